"""Operating the service: Prometheus metrics at ``GET /metrics`` and one log line per request.

    metrics.py     the app's registry; request counter and latency histogram (``Metrics.observe_request``)
    collectors.py  read at scrape time: tasks by kind and status, running tasks' progress, executor, model cache,
                   annotation limiter
    repository.py  the scrape's queries on the task table
    middleware.py  pure ASGI: request id, route template, status, latency → metrics and the log line
    logs.py        request ids, the text / JSON line, the ``imagerec.requests`` logger
    router.py      ``GET /metrics`` (scope ``read``)
"""

from imagerec.observability.metrics import Metrics, build_metrics, metrics_enabled
from imagerec.observability.middleware import RequestObserver
from imagerec.observability.router import router as metrics_router

__all__ = ["Metrics", "RequestObserver", "build_metrics", "metrics_enabled", "metrics_router"]
