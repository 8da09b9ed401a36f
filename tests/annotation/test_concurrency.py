"""Bounded, non-blocking inference: one load per cold model, one predict at a time per model, quick 429s."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import anyio
import httpx
import pytest

from imagerec.annotation.limiter import ConcurrencyLimiter, Overloaded
from imagerec.annotation.model_cache import LoadedModel, ModelCache
from imagerec.annotation.runtimes import InferenceModel
from imagerec.app import create_app
from imagerec.config import Settings
from tests.annotation.image_samples import noise_jpeg
from tests.helpers import AUTH, BASE_URL
from tests.trained_models import register_trained_model

URL = "/api/auto_annotate"


# --- the cache and the limiter on their own (a stand-in loader) ---------------------------------------------------

class SlowLoader:
    def __init__(self, seconds: float = 0.2) -> None:
        self.seconds = seconds
        self.calls: list[Path] = []

    def __call__(self, weights_path: Path, _settings: Settings):
        self.calls.append(weights_path)
        time.sleep(self.seconds)  # runs in a worker thread, like the real YOLO(...) load
        return InferenceModel(yolo=object(), names={0: "thing"}, kpt_names=None, kpt_shape=None, runtime="torch")


def weights(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"weights")
    return path


def test_ten_concurrent_gets_of_a_cold_model_load_it_once(tmp_path: Path) -> None:
    loader = SlowLoader()
    cache = ModelCache(settings=Settings(data_dir=tmp_path), capacity=2, loader=loader)
    path = weights(tmp_path, "a.pt")
    got = []

    async def main() -> None:
        async def one() -> None:
            got.append(await cache.get(model_id=1, weights_path=path))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(one)

    anyio.run(main)
    assert cache.loads == 1 and len(loader.calls) == 1
    assert len({id(model) for model in got}) == 1


def test_lru_eviction_and_reload_when_the_weights_change(tmp_path: Path) -> None:
    loader = SlowLoader(0)
    cache = ModelCache(settings=Settings(data_dir=tmp_path), capacity=1, loader=loader)
    a, b = weights(tmp_path, "a.pt"), weights(tmp_path, "b.pt")

    async def main() -> None:
        first = await cache.get(model_id=1, weights_path=a)
        assert await cache.get(model_id=1, weights_path=a) is first
        await cache.get(model_id=2, weights_path=b)  # capacity 1: model 1 goes
        assert cache.loaded_ids() == [2]
        await cache.get(model_id=1, weights_path=a)
        stat = a.stat()
        os.utime(a, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # new weights in the same place
        assert await cache.get(model_id=1, weights_path=a) is not first

    anyio.run(main)
    assert (cache.loads, cache.evictions, cache.hits) == (4, 2, 1)
    assert len(cache) == 1


def test_a_failed_load_reaches_every_waiter_and_is_retried_later(tmp_path: Path) -> None:
    attempts = []

    def broken(weights_path: Path, _settings: Settings):
        attempts.append(weights_path)
        time.sleep(0.1)
        raise RuntimeError("not a checkpoint")

    cache = ModelCache(settings=Settings(data_dir=tmp_path), capacity=1, loader=broken)
    path = weights(tmp_path, "bad.pt")
    failures = []

    async def main() -> None:
        async def one() -> None:
            try:
                await cache.get(model_id=7, weights_path=path)
            except Exception as error:  # noqa: BLE001 - the test collects them
                failures.append(error)

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(one)
        await one()

    anyio.run(main)
    assert len(failures) == 6 and len(attempts) == 2
    assert all(getattr(f, "status_code", None) == 500 and "model 7" in str(f) for f in failures)


def test_the_limiter_runs_some_queues_some_and_refuses_the_rest() -> None:
    outcomes: list[str] = []

    async def main() -> None:
        limiter = ConcurrencyLimiter(max_running=2, max_waiting=3, retry_after_seconds=2)
        peak = 0

        async def one() -> None:
            nonlocal peak
            try:
                async with limiter.slot():
                    peak = max(peak, limiter.running)
                    await anyio.sleep(0.05)
                outcomes.append("ran")
            except Overloaded as error:
                assert error.retry_after == 2 and error.status_code == 429
                outcomes.append("refused")

        async with anyio.create_task_group() as group:
            for _ in range(8):
                group.start_soon(one)
        assert peak == 2 and limiter.running == 0 and limiter.waiting == 0

    anyio.run(main)
    assert outcomes.count("ran") == 5 and outcomes.count("refused") == 3


# --- the whole service: real HTTP into the app, a real model --------------------------------------------------------

async def burst(settings: Settings, trained, *, calls: int, models: int = 1, with_health: bool = False,
                imgsz: int = 64) -> dict:
    """``calls`` simultaneous annotate requests (round robin over ``models`` registrations of ``trained``)."""
    app = create_app(settings)
    image = noise_jpeg(320, 240)
    async with app.router.lifespan_context(app):
        ids = [register_trained_model(app, trained, name=f"m{i}") for i in range(models)]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL, headers=AUTH, timeout=120) as client:
            responses: list[httpx.Response] = []
            health_pending: list[int] = []  # for each /health answer: annotate calls still unanswered then

            async def call(index: int) -> None:
                files = [("files", (f"{index}.jpg", image, "image/jpeg"))]
                form = {"model_id": ids[index % models], "imgsz": imgsz}
                responses.append(await client.post(URL, files=files, data=form))

            async def health() -> None:
                while len(responses) < calls:
                    assert (await client.get("/health")).status_code == 200
                    health_pending.append(calls - len(responses))
                    await anyio.sleep(0.05)

            async with anyio.create_task_group() as group:
                if with_health:
                    group.start_soon(health)
                for index in range(calls):
                    group.start_soon(call, index)
                while len(responses) < calls:
                    await anyio.sleep(0.05)
                group.cancel_scope.cancel()
        runtime = app.state.annotation_runtime
        return {"responses": responses, "loads": runtime.cache.loads, "evictions": runtime.cache.evictions,
                "health_pending": health_pending}


@pytest.mark.training
def test_twenty_simultaneous_calls_on_a_cold_model_load_it_once(tmp_path: Path, trained_models, monkeypatch) -> None:
    settings = Settings(data_dir=tmp_path / "data", annotate_max_concurrent=20, annotate_max_waiting=20)
    predict_threads: set[int] = set()
    predict_sync = LoadedModel.predict_sync

    def recording(model, array, kwargs):
        predict_threads.add(threading.get_ident())
        return predict_sync(model, array, kwargs)

    monkeypatch.setattr(LoadedModel, "predict_sync", recording)
    outcome = anyio.run(lambda: burst(settings, trained_models("detect"), calls=20, with_health=True))
    statuses = [response.status_code for response in outcome["responses"]]
    assert statuses == [200] * 20, [r.text for r in outcome["responses"] if r.status_code != 200]
    assert outcome["loads"] == 1
    # every predict ran in a worker thread, never on the event loop (anyio.run's thread), which kept answering
    assert predict_threads and threading.get_ident() not in predict_threads
    assert outcome["health_pending"], "no /health answer came back during the burst"


@pytest.mark.training
def test_beyond_capacity_the_answer_is_a_quick_429_with_retry_after(tmp_path: Path, trained_models) -> None:
    settings = Settings(data_dir=tmp_path / "data")  # defaults: 2 running, 16 waiting
    small = Settings(data_dir=tmp_path / "small", annotate_max_concurrent=1, annotate_max_waiting=2)
    for limits, refused in ((settings, 2), (small, 17)):
        outcome = anyio.run(lambda limits=limits: burst(limits, trained_models("detect"), calls=20))
        statuses = sorted(response.status_code for response in outcome["responses"])
        assert statuses == [200] * (20 - refused) + [429] * refused, statuses
        assert outcome["loads"] == 1
        for response in outcome["responses"]:
            if response.status_code == 429:
                assert int(response.headers["Retry-After"]) >= 1
                assert "busy" in response.json()["detail"]


@pytest.mark.training
def test_cache_of_one_model_evicts_when_models_alternate(tmp_path: Path, trained_models) -> None:
    settings = Settings(data_dir=tmp_path / "data", model_cache_size=1, annotate_max_concurrent=1,
                        annotate_max_waiting=20)
    outcome = anyio.run(lambda: burst(settings, trained_models("detect"), calls=4, models=2))
    assert [response.status_code for response in outcome["responses"]] == [200] * 4
    assert outcome["loads"] >= 2 and outcome["evictions"] == outcome["loads"] - 1
