"""Loaded YOLO models, kept for reuse: LRU, single-flight loading, one inference at a time per model.

- The key is the model id and the weights file's mtime: weights replaced on disk are loaded afresh.
- Ten requests for a cold model start exactly one load; the others wait for it (``loads`` counts them).
- A ``YOLO`` object is not thread-safe, so each loaded model has a lock: its callers queue on the event loop
  (an ``anyio.Lock`` costs no thread) and the predict itself runs in a worker thread, never on the loop.
- Only weights the service registered are loaded (``.pt`` files are pickles: loading runs their code).
- The engine (ONNX Runtime on a CPU, else PyTorch) is chosen by ``runtimes.load_inference_model``.

Ultralytics is imported on the first load, so the API starts without it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio

from imagerec.annotation.runtimes import InferenceModel, load_inference_model
from imagerec.config import Settings
from imagerec.errors import ImagerecError, NotFound

CacheKey = tuple[int, int]  # (model id, weights mtime in ns)


@dataclass(eq=False)
class LoadedModel:
    """One Ultralytics model in memory. Call ``predict`` through ``ModelCache.predict`` (it holds the lock)."""

    key: CacheKey
    model: InferenceModel
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    thread_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def names(self) -> dict[int, str]:
        return self.model.names

    @property
    def kpt_names(self) -> Any:
        return self.model.kpt_names

    def predict_sync(self, array, kwargs: dict[str, Any]):
        """One image → its ``Results``; blocking, for a worker thread."""
        with self.thread_lock:  # guards callers that bypass the async lock
            return self.model.yolo.predict(array, **kwargs)[0]


class _Pending:
    """A load in flight: followers wait on ``done`` and then read the outcome."""

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.model: LoadedModel | None = None
        self.error: BaseException | None = None


class ModelCache:
    def __init__(self, *, settings: Settings, capacity: int,
                 loader: Callable[[Path, Settings], InferenceModel] = load_inference_model) -> None:
        self.settings = settings
        self.capacity = capacity
        self.loader = loader
        self._models: OrderedDict[CacheKey, LoadedModel] = OrderedDict()
        self._pending: dict[CacheKey, _Pending] = {}
        self.loads = 0  # counters for tests and /metrics (read at scrape time)
        self.hits = 0
        self.misses = 0  # requests that started a load (the failed ones too; ``loads`` counts the successes)
        self.evictions = 0

    def __len__(self) -> int:
        return len(self._models)

    def loaded_ids(self) -> list[int]:
        return [model_id for model_id, _ in self._models]

    async def get(self, *, model_id: int, weights_path: Path) -> LoadedModel:
        key = (model_id, _mtime_ns(weights_path))  # one stat of a local file: cheaper than a thread hop
        while True:
            if (cached := self._models.get(key)) is not None:
                self._models.move_to_end(key)
                self.hits += 1
                return cached
            pending = self._pending.get(key)
            if pending is None:
                self.misses += 1
                return await self._load(key, weights_path)
            await pending.done.wait()
            if pending.error is not None:
                raise _load_failed(model_id, pending.error)
            if pending.model is not None:
                self.hits += 1
                return pending.model

    async def predict(self, model: LoadedModel, array, kwargs: dict[str, Any]):
        """Predict in a worker thread, one at a time per model (callers queue here, on the loop)."""
        async with model.lock:
            return await anyio.to_thread.run_sync(model.predict_sync, array, kwargs)

    def clear(self) -> None:
        self._models.clear()

    async def _load(self, key: CacheKey, weights_path: Path) -> LoadedModel:
        pending = self._pending[key] = _Pending()
        # Shielded: a caller that disconnects must not strand the followers waiting on this load.
        with anyio.CancelScope(shield=True):
            try:
                loaded = await anyio.to_thread.run_sync(self.loader, weights_path, self.settings)
                pending.model = LoadedModel(key=key, model=loaded)
                self.loads += 1
                self._insert(pending.model)
            except Exception as error:
                pending.error = error
            finally:
                del self._pending[key]
                pending.done.set()
        if pending.error is not None:
            raise _load_failed(key[0], pending.error)
        return pending.model

    def _insert(self, model: LoadedModel) -> None:
        stale = [key for key in self._models if key[0] == model.key[0]]  # older weights of the same model
        for key in stale:
            del self._models[key]
        self._models[model.key] = model
        while len(self._models) > self.capacity:
            self._models.popitem(last=False)  # in-flight users keep their reference until they finish
            self.evictions += 1


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        raise NotFound(f"the weights file {path.name} is missing on the server") from None


def _load_failed(model_id: int, error: BaseException) -> ImagerecError:
    if isinstance(error, ImagerecError):
        return error
    return ImagerecError(f"the weights of model {model_id} could not be loaded: {error}")
