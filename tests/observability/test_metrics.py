"""``GET /metrics`` as Prometheus reads it: requests by route template, tasks, executor, auto-annotation."""

from __future__ import annotations

from types import SimpleNamespace

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from imagerec.annotation.limiter import ConcurrencyLimiter, Overloaded
from imagerec.annotation.model_cache import ModelCache
from imagerec.annotation.runtimes import InferenceModel
from imagerec.config import Settings
from imagerec.db import unit_of_work
from imagerec.executor.local import LocalExecutor
from imagerec.observability.collectors import RuntimeCollector
from imagerec.tasks import repository
from imagerec.tasks.models import Task
from tests.annotation.image_samples import noise_jpeg
from tests.observability.scrape import Samples, scrape
from tests.trained_models import register_trained_model

REQUESTS = "imagerec_http_requests_total"
LATENCY_COUNT = "imagerec_http_request_duration_seconds_count"


def new_key(client, *scopes: str) -> str:
    response = client.post("/api/keys", json={"name": f"metrics-{'-'.join(scopes)}", "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return response.json()["key"]


def test_metrics_need_a_key_with_the_read_scope(client) -> None:
    assert client.get("/metrics", headers={"Authorization": ""}).status_code == 401
    annotate_only = new_key(client, "annotate")
    refused = client.get("/metrics", headers={"Authorization": f"Bearer {annotate_only}"})
    assert refused.status_code == 403 and "read" in refused.text
    reader = new_key(client, "read")
    assert client.get("/metrics", headers={"Authorization": f"Bearer {reader}"}).status_code == 200


def test_requests_are_counted_by_route_template_method_and_status(client) -> None:
    before = scrape(client)
    for task_id in (1, 2, 3):
        assert client.get(f"/api/tasks/{task_id}").status_code == 404
    assert client.get("/api/tasks").status_code == 200
    after = scrape(client)

    labels = {"method": "GET", "route": "/api/tasks/{task_id}"}
    assert after.get(REQUESTS, **labels, status="404") - before.get(REQUESTS, **labels, status="404") == 3
    assert after.get(LATENCY_COUNT, **labels) - before.get(LATENCY_COUNT, **labels) == 3
    listing = {"method": "GET", "route": "/api/tasks", "status": "200"}
    assert after.get(REQUESTS, **listing) - before.get(REQUESTS, **listing) == 1
    assert not any(route.startswith("/api/tasks/") and "{" not in route for route in after.labels(REQUESTS, "route"))


def test_unknown_paths_and_methods_share_one_label_each(client) -> None:
    before = scrape(client)
    for path in ("/no/such/page", "/no/such/page/2", "/api/tasks/1/nothing-here"):
        assert client.get(path).status_code == 404
    assert client.request("BREW", "/api/tasks").status_code == 405
    after = scrape(client)

    unmatched = {"method": "GET", "route": "<unmatched>", "status": "404"}
    assert after.get(REQUESTS, **unmatched) - before.get(REQUESTS, **unmatched) == 3
    assert after.get(REQUESTS, method="OTHER", route="/api/tasks", status="405") == 1  # the route exists
    assert not any("no/such" in route or "nothing" in route for route in after.labels(REQUESTS, "route"))
    assert "BREW" not in after.labels(REQUESTS, "method")


@pytest.fixture
def idle_executor(monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor claims nothing, so a queued row stays queued while the test looks at it."""
    monkeypatch.setattr(LocalExecutor, "_claim", lambda _self: None)


def add_task(client, *, kind: str, status: str, **values) -> int:
    with unit_of_work(client.app.state.session_factory) as session:
        task = Task(kind=kind, type="regular", status=status, params={}, **values)
        return repository.add(session, task=task, refs=[]).id


def test_tasks_by_kind_and_status_and_running_progress(idle_executor, client) -> None:
    before = scrape(client)
    assert before.get("imagerec_tasks", kind="training", status="failed") == 0  # every pair is there, as 0
    add_task(client, kind="training", status="queued")
    add_task(client, kind="annotation", status="queued")
    add_task(client, kind="training", status="failed", error="boom")
    running = add_task(client, kind="training", status="running", worker="local:elsewhere:1", epoch=2,
                       total_epochs=5, progress=0.4, eta_seconds=90.0)
    after = scrape(client)

    assert after.get("imagerec_tasks", kind="training", status="queued") == 1
    assert after.get("imagerec_tasks", kind="annotation", status="queued") == 1
    assert after.get("imagerec_tasks", kind="training", status="failed") == 1
    assert after.get("imagerec_tasks", kind="training", status="running") == 1
    assert (after.get("imagerec_tasks_queued"), after.get("imagerec_tasks_running")) == (2, 1)
    task = {"task_id": str(running), "kind": "training", "type": "regular"}
    assert after.get("imagerec_task_epoch", **task) == 2
    assert after.get("imagerec_task_total_epochs", **task) == 5
    assert after.get("imagerec_task_progress_ratio", **task) == 0.4
    assert after.get("imagerec_task_eta_seconds", **task) == 90
    assert after.labels("imagerec_task_progress_ratio", "task_id") == {str(running)}  # running tasks only


def test_the_executor_state_is_exported(client) -> None:
    samples = scrape(client)
    assert samples.get("imagerec_executor_up", kind="local") == 1
    assert samples.get("imagerec_executor_concurrency", kind="local") == client.app.state.settings.executor_concurrency
    assert samples.get("imagerec_executor_active_tasks", kind="local") == 0


def stand_in_loader(_weights_path, _settings) -> InferenceModel:
    return InferenceModel(yolo=object(), names={0: "thing"}, kpt_names=None, kpt_shape=None, runtime="torch")


def test_the_model_cache_and_limiter_counters_are_exported(tmp_path) -> None:
    cache = ModelCache(settings=Settings(data_dir=tmp_path), capacity=1, loader=stand_in_loader)
    limiter = ConcurrencyLimiter(max_running=1, max_waiting=0)
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    first.write_bytes(b"weights")
    second.write_bytes(b"weights")

    async def main() -> None:
        await cache.get(model_id=1, weights_path=first)  # miss: loads
        await cache.get(model_id=1, weights_path=first)  # hit
        await cache.get(model_id=2, weights_path=second)  # miss: loads, evicts model 1
        async with limiter.slot():
            with pytest.raises(Overloaded):
                async with limiter.slot():
                    pass

    anyio.run(main)
    registry = CollectorRegistry()
    registry.register(RuntimeCollector(SimpleNamespace(annotation_runtime=SimpleNamespace(cache=cache,
                                                                                          limiter=limiter))))
    samples = Samples(generate_latest(registry).decode())
    assert samples.get("imagerec_model_cache_hits_total") == 1
    assert samples.get("imagerec_model_cache_misses_total") == 2
    assert samples.get("imagerec_model_cache_loads_total") == 2
    assert samples.get("imagerec_model_cache_evictions_total") == 1
    assert (samples.get("imagerec_model_cache_models"), samples.get("imagerec_model_cache_capacity")) == (1, 1)
    assert samples.get("imagerec_annotation_rejections_total") == 1
    assert (samples.get("imagerec_annotation_running"), samples.get("imagerec_annotation_waiting")) == (0, 0)


def test_auto_annotation_latency_and_model_loads_are_counted(client, trained_models) -> None:
    model_id = register_trained_model(client.app, trained_models("detect"))
    before = scrape(client)
    for _ in range(2):
        response = client.post("/api/auto_annotate", files={"files": ("a.jpg", noise_jpeg(160, 120), "image/jpeg")},
                               data={"model_id": model_id, "imgsz": 64})
        assert response.status_code == 200, response.text
    after = scrape(client)

    annotate = {"method": "POST", "route": "/api/auto_annotate"}
    assert after.get(LATENCY_COUNT, **annotate) - before.get(LATENCY_COUNT, **annotate) == 2
    assert after.get(REQUESTS, **annotate, status="200") - before.get(REQUESTS, **annotate, status="200") == 2
    assert after.get("imagerec_model_cache_misses_total") - before.get("imagerec_model_cache_misses_total") == 1
    assert after.get("imagerec_model_cache_loads_total") - before.get("imagerec_model_cache_loads_total") == 1
    assert after.get("imagerec_model_cache_hits_total") - before.get("imagerec_model_cache_hits_total") == 1
