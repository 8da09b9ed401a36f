"""The service's Prometheus metrics: one registry per app (never the process-wide default one).

Requests are counted as they end (``observe_request``: two dictionary lookups and a histogram observe). Everything
else is read when ``/metrics`` is scraped (``collectors.py``): the task table, the executor, the model cache and the
annotation limiter already hold their numbers, so the request path never pays for them.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from imagerec.config import Settings
from imagerec.observability.collectors import RuntimeCollector, TaskCollector

# Seconds. Wide at the top: an auto-annotate request with many images, or a log stream, runs for a minute or more.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


def metrics_enabled(settings: Settings) -> bool:
    return settings.metrics


class Metrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "imagerec_http_requests", "HTTP requests answered, by route template, method and status code.",
            ["method", "route", "status"], registry=registry,
        )
        self.latency = Histogram(
            "imagerec_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template and method "
            "(POST /api/auto_annotate is the annotation latency).",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}  # labels → (counter, histogram) children

    def observe_request(self, *, method: str, route: str, status: int, seconds: float) -> None:
        children = self._children.get((method, route, status))
        if children is None:  # first request of this kind; the label values are bounded, so is this dict
            children = self._children[(method, route, status)] = (
                self.requests.labels(method, route, str(status)), self.latency.labels(method, route))
        counter, histogram = children
        counter.inc()
        histogram.observe(seconds)

    def render(self) -> bytes:
        """The Prometheus text format (version 0.0.4)."""
        return generate_latest(self.registry)


def build_metrics(state: Any) -> Metrics:
    """The app's metrics; ``state`` is ``app.state``, whose resources the collectors read at scrape time (they are
    built later, in ``lifespan``)."""
    registry = CollectorRegistry()
    registry.register(TaskCollector(state))
    registry.register(RuntimeCollector(state))
    return Metrics(registry)
