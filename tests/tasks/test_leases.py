"""Ownership across machines, on the database alone: the claim that makes one owner, the lease that tells a gone
worker, the settings and the worker command that refuse what cannot work. (The real thing, with Celery workers,
is tests/tasks/test_celery_workers.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import update

from imagerec import cli
from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory, unit_of_work, utcnow
from imagerec.executor import leases
from imagerec.migrations import upgrade
from imagerec.tasks import repository
from imagerec.tasks.kinds import queue_task
from imagerec.tasks.models import Task, TaskKind, TaskStatus
from imagerec.workers import deployment
from imagerec.workers.heartbeat import Heartbeat
from imagerec.workers.repository import live

pytestmark = pytest.mark.both_databases


class _NoExecutor:
    def submit(self, task_id: int) -> None:
        pass


@pytest.fixture
def factory(settings):
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url, pool_size=2)
    yield make_session_factory(engine)
    engine.dispose()


def _queued(factory) -> int:
    with unit_of_work(factory) as session:
        return queue_task(session, executor=_NoExecutor(), kind=TaskKind.evaluation, type_="evaluation", params={},
                          refs=[], message="queued", queue="gpu").id


def _task(factory, task_id: int) -> Task:
    with factory() as session:
        return repository.get(session, task_id)


def test_only_the_first_claim_of_a_task_wins(factory):
    task_id = _queued(factory)
    with unit_of_work(factory) as session:
        assert repository.claim(session, task_id=task_id, worker="celery:a@h:1", message_id="m1")
    with unit_of_work(factory) as session:  # a duplicated message, on another worker
        assert not repository.claim(session, task_id=task_id, worker="celery:b@h:2", message_id="m2")
    task = _task(factory, task_id)
    assert (task.status, task.worker, task.message_id, task.attempt, task.queue) == (
        TaskStatus.running, "celery:a@h:1", "m1", 1, "gpu")


def test_a_lapsed_lease_interrupts_the_task_and_a_renewed_one_keeps_it(settings, factory):
    lapsed, renewed, cancelled, local = (_queued(factory) for _ in range(4))
    with unit_of_work(factory) as session:
        for task_id, owner in ((lapsed, "celery:gone@h:1"), (renewed, "celery:alive@h:2"),
                               (cancelled, "celery:gone@h:1"), (local, "local:h:3")):
            repository.claim(session, task_id=task_id, worker=owner)
        old = utcnow() - timedelta(seconds=settings.worker_lease_seconds + 1)
        session.execute(update(Task).where(Task.id.in_([lapsed, renewed, local])).values(heartbeat_at=old))
        session.execute(update(Task).where(Task.id == cancelled).values(heartbeat_at=None))  # never beat at all
        repository.request_cancel(session, task_id=cancelled)
    with unit_of_work(factory) as session:
        repository.renew_leases(session, worker="celery:alive@h:2")

    assert sorted(leases.expire(settings, factory)) == [lapsed, cancelled]
    assert leases.expire(settings, factory) == []  # a second sweeper finds nothing left to do
    assert _task(factory, lapsed).status == TaskStatus.interrupted and "heartbeats" in _task(factory, lapsed).error
    assert _task(factory, cancelled).status == TaskStatus.cancelled
    assert _task(factory, renewed).status == TaskStatus.running
    assert _task(factory, local).status == TaskStatus.running  # the built-in executor knows its own children


def test_a_worker_row_lives_while_it_beats_and_goes_when_it_leaves(settings, factory):
    beat = Heartbeat(factory, settings=settings, name="celery:w@h", kind="celery", queues=["gpu"], slots=2,
                     gpus=["0", "1"])
    beat.beat()
    with factory() as session:
        [row] = live(session, since=utcnow() - timedelta(seconds=5))
    assert (row.name, row.queues, row.slots, row.gpus) == ("celery:w@h", ["gpu"], 2, ["0", "1"])
    beat.leave()
    with factory() as session:
        assert live(session, since=utcnow() - timedelta(seconds=5)) == []


def test_the_data_dir_marker_ties_a_data_dir_to_its_database(settings, factory, tmp_path):
    token = deployment.ensure(settings, factory)
    assert deployment.ensure(settings, factory) == token  # the API's next start
    deployment.check(settings, factory)
    other = settings.model_copy(update={"data_dir": tmp_path / "elsewhere"})
    other.data_dir.mkdir()
    with pytest.raises(deployment.DataDirMismatch, match="mounted"):
        deployment.check(other, factory)
    (other.data_dir / deployment.MARKER).write_text("another-deployment\n")
    with pytest.raises(deployment.DataDirMismatch, match="another deployment"):
        deployment.check(other, factory)
    with pytest.raises(deployment.DataDirMismatch, match="another deployment"):
        deployment.ensure(other, factory)


def test_settings_refuse_a_celery_executor_without_broker_and_a_heartbeat_as_long_as_the_lease(tmp_path):
    with pytest.raises(ValidationError, match="broker_url"):
        Settings(data_dir=tmp_path, executor="celery")
    with pytest.raises(ValidationError, match="half"):
        Settings(data_dir=tmp_path, worker_lease_seconds=10, worker_heartbeat_seconds=6)


@pytest.mark.parametrize(("argv", "reason"), [
    (["--gpus", "0,x"], "distinct GPU indices"),
    (["--gpus", "0,0"], "distinct GPU indices"),
    (["--gpus", "0,1", "--concurrency", "3"], "contradicts"),
    (["--concurrency", "0"], "between 1 and 64"),
    (["--queue=gpu,.hidden"], "queue names"),
])
def test_the_worker_command_refuses_slots_that_cannot_be(monkeypatch, tmp_path, capsys, argv, reason):
    monkeypatch.setenv("IMAGEREC_BROKER_URL", "redis://127.0.0.1:1/0")
    monkeypatch.setenv("IMAGEREC_DATA_DIR", str(tmp_path))
    assert cli.main(["worker", *argv]) == 2
    assert reason in capsys.readouterr().err


def test_the_worker_command_needs_a_broker(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("IMAGEREC_BROKER_URL", raising=False)
    monkeypatch.setenv("IMAGEREC_DATA_DIR", str(tmp_path))
    assert cli.main(["worker"]) == 2
    assert "IMAGEREC_BROKER_URL" in capsys.readouterr().err


def test_the_built_in_executor_is_the_one_worker_listed(client):
    listed = client.get("/api/workers")
    assert listed.status_code == 200
    body = listed.json()
    [worker] = body["workers"]
    assert body["executor"] == "local" and worker["kind"] == "local" and worker["slots"] == 1
    assert worker["name"].startswith("local:") and worker["running_tasks"] == [] and worker["celery"] is None
