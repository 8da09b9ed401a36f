"""Scale-out, for real: the API with the Celery executor, two ``imagerec worker`` processes, Redis, PostgreSQL and
real tiny trainings. Two trainings run at once on two workers; a cancel reaches a training on a worker; a worker
killed outright leaves its training ``interrupted`` within the lease timeout, and the other worker resumes it;
restarting the API leaves running trainings alone; a duplicated message never starts a second run; a cancel that
nothing on a stuck worker honours ends with a revoke that kills its process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psycopg
import pytest

from imagerec.config import Settings
from imagerec.datasets.synthetic import write_dataset_zip
from imagerec.executor.celery_app import RUN_TASK, make_celery
from tests.celery_cluster import LEASE_SECONDS, Cluster, redis_url
from tests.helpers import TERMINAL, register_dataset, start_training, tiny_training, wait_for
from tests.server_process import REPO_ROOT, clean_env

pytestmark = [pytest.mark.training, pytest.mark.celery]


@pytest.fixture
def database() -> str:
    return "postgresql"


def _running(task: dict) -> bool:
    assert task["status"] in ("queued", "running"), task
    return task["status"] == "running" and (task["progress"]["epoch"] or 0) >= 1


def _logs(cluster: Cluster, task_id: int) -> list[str]:
    return [line["message"] for line in cluster.client.get(f"/api/tasks/{task_id}/logs").json()["lines"]]


def _finished(cluster: Cluster, task_id: int) -> dict:
    return wait_for(cluster.client, task_id, lambda t: t["status"] in TERMINAL, timeout=240)


def test_two_trainings_run_at_once_on_two_workers_and_a_cancel_reaches_one(tmp_path, database_url):
    with Cluster(tmp_path, database_url, cancel_grace_seconds="30") as cluster:
        cluster.start_workers(("one",), ("two",))
        dataset = register_dataset(cluster.client, tmp_path, "detect", train=32)
        kept, cancelled = (start_training(cluster.client, tiny_training(dataset["id"], epochs=epochs, batch=4))
                           for epochs in (8, 30))
        running = [wait_for(cluster.client, task["id"], _running) for task in (kept, cancelled)]
        assert len({task["worker"].rsplit(":", 1)[0] for task in running}) == 2, running  # one on each worker
        listed = cluster.client.get("/api/workers").json()
        assert listed["executor"] == "celery"
        assert sorted(t for worker in listed["workers"] for t in worker["running_tasks"]) == sorted(
            [kept["id"], cancelled["id"]])
        assert all(worker["celery"]["reachable"] and worker["slots"] == 1 for worker in listed["workers"])

        assert cluster.client.post(f"/api/tasks/{cancelled['id']}/cancel").status_code == 200
        assert _finished(cluster, cancelled["id"])["status"] == "cancelled"
        done = _finished(cluster, kept["id"])
        assert done["status"] == "succeeded", done["error"]
        assert cluster.client.get(f"/api/models/{done['model_id']}").status_code == 200
        assert done["attempt"] == 1


def test_a_worker_killed_outright_loses_its_training_to_the_other_worker_after_the_lease(tmp_path, database_url):
    with Cluster(tmp_path, database_url) as cluster:
        first, second = cluster.start_workers(("first",), ("second",))
        dataset = register_dataset(cluster.client, tmp_path, "detect", train=32)
        task = start_training(cluster.client, tiny_training(dataset["id"], epochs=8, batch=4))
        running = wait_for(cluster.client, task["id"], _running)
        victim, survivor = (first, second) if first.name in running["worker"] else (second, first)
        victim.kill()
        killed_at = time.monotonic()
        lapsed = wait_for(cluster.client, task["id"], lambda t: t["status"] != "running", timeout=60)
        assert lapsed["status"] == "interrupted", lapsed
        assert time.monotonic() - killed_at < LEASE_SECONDS + 5  # the lease timeout, plus a sweep and a poll
        assert "heartbeats" in lapsed["error"]
        deadline = time.monotonic() + 10  # the dead one's row ages out with its lease
        while (workers := [row["name"] for row in cluster.client.get("/api/workers").json()["workers"]]) != [
                f"celery:{survivor.name}"] and time.monotonic() < deadline:
            time.sleep(0.5)
        assert workers == [f"celery:{survivor.name}"]

        assert cluster.client.post(f"/api/tasks/{task['id']}/resume").status_code == 202
        done = _finished(cluster, task["id"])
        assert done["status"] == "succeeded", done["error"]
        assert survivor.name in done["worker"] and done["attempt"] == 2
        assert cluster.client.get(f"/api/models/{done['model_id']}").status_code == 200


def test_restarting_the_api_leaves_a_running_training_alone_and_a_second_message_is_ignored(
        tmp_path, database_url):
    with Cluster(tmp_path, database_url) as cluster:
        [worker] = cluster.start_workers(("gpu-box", "--gpus", "3"))
        [row] = cluster.client.get("/api/workers").json()["workers"]
        assert row["gpus"] == ["3"] and row["slots"] == 1
        dataset = register_dataset(cluster.client, tmp_path, "detect", train=32)
        task = start_training(cluster.client, tiny_training(dataset["id"], epochs=5, batch=4))
        wait_for(cluster.client, task["id"], _running)
        cluster.api.stop()
        time.sleep(2)
        cluster.api.start()
        assert cluster.client.get(f"/api/tasks/{task['id']}").json()["status"] == "running"

        settings = Settings(broker_url=redis_url(), default_queue=cluster.queue, data_dir=tmp_path / "data")
        make_celery(settings).send_task(RUN_TASK, args=[task["id"]], queue=cluster.queue)  # a duplicate
        done = _finished(cluster, task["id"])
        assert done["status"] == "succeeded", done["error"]
        assert done["attempt"] == 1
        started = [line for line in _logs(cluster, task["id"]) if line.startswith("started on worker")]
        assert started == [f"started on worker {worker.name} (GPU 3)"]
        deadline = time.monotonic() + 30
        while "is not queued" not in worker.log() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "is not queued" in worker.log()


def test_an_import_runs_on_a_worker_and_a_worker_refuses_a_data_dir_that_is_not_the_deployments(
        tmp_path, database_url):
    with Cluster(tmp_path, database_url, dataset_import_task_min_images="1") as cluster:
        cluster.start_workers(("cpu-box", "--concurrency", "2"))
        archive = write_dataset_zip("detect", tmp_path / "small.zip", train=4, val=2)
        with archive.open("rb") as handle:
            queued = cluster.client.post("/api/datasets", data={"name": "imported", "task": "detect"},
                                         files={"file": (archive.name, handle, "application/zip")})
        assert queued.status_code == 202, queued.text
        done = _finished(cluster, queued.json()["id"])
        assert done["status"] == "succeeded", done["error"]
        assert "cpu-box" in done["worker"]
        assert [d["name"] for d in cluster.client.get("/api/datasets").json()] == ["imported"]
        health = cluster.client.get("/health").json()
        assert health["database"] == "postgresql" and health["executor"]["kind"] == "celery"
        metrics = cluster.client.get("/metrics").text
        assert 'imagerec_executor_up{kind="celery"} 1.0' in metrics
        assert 'imagerec_executor_concurrency{kind="celery"} 2.0' in metrics  # the live workers' slots

        elsewhere = tmp_path / "not-mounted"
        elsewhere.mkdir()
        env = cluster.env | {"IMAGEREC_DATA_DIR": str(elsewhere)}
        refused = subprocess.run([sys.executable, "-m", "imagerec", "worker"], cwd=REPO_ROOT, env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2
        assert "has no .imagerec-deployment file" in refused.stderr and "mounted" in refused.stderr
    on_sqlite = clean_env(IMAGEREC_BROKER_URL=redis_url(), IMAGEREC_DATA_DIR=str(tmp_path / "data"))
    refused = subprocess.run([sys.executable, "-m", "imagerec", "worker"], cwd=REPO_ROOT, env=on_sqlite,
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "SQLite cannot be shared" in refused.stderr


def test_a_cancel_that_nothing_on_the_worker_honours_ends_with_a_revoke_that_kills_its_process(
        tmp_path, database_url):
    # a lease longer than grace + two heartbeats: the revoke, not the lease, must end the stuck process
    with Cluster(tmp_path, database_url, cancel_grace_seconds="2", worker_lease_seconds="15") as cluster:
        cluster.start_workers(("stuck",))
        dataset = register_dataset(cluster.client, tmp_path, "detect", train=32)
        task = start_training(cluster.client, tiny_training(dataset["id"], epochs=30, batch=4))
        wait_for(cluster.client, task["id"], _running)
        with psycopg.connect(database_url.replace("+psycopg", "")) as db:
            worker, child, message = db.execute("SELECT worker, worker_pid, message_id FROM tasks WHERE id = %s",
                                                (task["id"],)).fetchone()
        pool_process = int(worker.rsplit(":", 1)[1])
        for pid in (child, pool_process):  # neither the training's callback nor its supervisor can act now
            os.kill(pid, signal.SIGSTOP)
        assert cluster.client.post(f"/api/tasks/{task['id']}/cancel").status_code == 200

        deadline = time.monotonic() + 12  # the revoke comes after the grace and two heartbeats
        while _alive(pool_process) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(pool_process), "the revoke did not terminate the stuck pool process"
        assert message in (tmp_path / "api.log").read_text()  # "revoking Celery message …"
        done = _finished(cluster, task["id"])
        assert done["status"] == "cancelled", done
        deadline = time.monotonic() + 10
        while _alive(child) and time.monotonic() < deadline:  # it dies with its pool process (PR_SET_PDEATHSIG)
            time.sleep(0.2)
        assert not _alive(child)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead, only not yet reaped
    except FileNotFoundError:
        return False
