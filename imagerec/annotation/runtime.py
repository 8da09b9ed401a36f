"""What auto-annotation keeps between requests: the model cache and the concurrency limiter.

Built in the app's ``lifespan`` (never at import) and handed to routes through ``deps.AnnotationRuntimeDep``;
the Label Studio backend and anything else that annotates in the API process use the same one, so the
limits hold across all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from imagerec.annotation.limiter import ConcurrencyLimiter
from imagerec.annotation.model_cache import ModelCache
from imagerec.config import Settings


@dataclass
class AnnotationRuntime:
    settings: Settings
    cache: ModelCache
    limiter: ConcurrencyLimiter

    def close(self) -> None:
        self.cache.clear()


def build_runtime(settings: Settings) -> AnnotationRuntime:
    """Call inside the event loop (``lifespan``): the limiter's semaphore belongs to it."""
    return AnnotationRuntime(
        settings=settings,
        cache=ModelCache(settings=settings, capacity=settings.model_cache_size),
        limiter=ConcurrencyLimiter(
            max_running=settings.annotate_max_concurrent, max_waiting=settings.annotate_max_waiting
        ),
    )
