"""The FastAPI application. Resources (engine, executor) are built in ``lifespan``, never at import.

Nothing on this path imports torch or ultralytics: the server is ready in well under a second.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from imagerec import __version__
from imagerec.admission import Admission
from imagerec.annotation.limiter import Overloaded
from imagerec.annotation.router import overloaded_response
from imagerec.annotation.runtime import build_runtime
from imagerec.api_docs import install_api_docs
from imagerec.auth.cache import CheckedKeys
from imagerec.auth.service import bootstrap_admin_key
from imagerec.body_limit import BodySizeLimit
from imagerec.browser_guard import BrowserGuard
from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory
from imagerec.errors import install_handlers
from imagerec.executor import build_executor
from imagerec.migrations import upgrade
from imagerec.observability import RequestObserver, build_metrics, metrics_enabled, metrics_router
from imagerec.routes import include_routers
from imagerec.workers import deployment

log = logging.getLogger("imagerec")


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url, pool_size=settings.db_pool_size,
                         busy_timeout=settings.db_busy_timeout_seconds)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    deployment.ensure(settings, app.state.session_factory)  # the data dir's marker: workers check it
    executor = build_executor(settings, app.state.session_factory)
    app.state.executor = executor
    app.state.annotation_runtime = annotation_runtime = build_runtime(settings)  # models load on first use
    app.state.key_last_used = {}  # key id → when its last_used_at was last written (see auth.deps)
    app.state.checked_keys = CheckedKeys(settings.data_dir)
    _announce_auth(settings, bootstrap_admin_key(settings, app.state.session_factory))
    executor.start()
    try:
        yield
    finally:
        annotation_runtime.close()
        executor.stop()
        engine.dispose()


def _announce_auth(settings: Settings, admin_key_file) -> None:
    if settings.auth == "off":
        log.warning("IMAGEREC_AUTH=off: every request is accepted without a key; use this only for a single "
                    "user on loopback (the Host and Origin checks still apply)")
    elif admin_key_file is not None:
        log.warning("API keys are required; the admin key is in %s", admin_key_file)


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="imagerec",
        version=__version__,
        description="Datasets → pre-labelling → training (regular, incremental, distillation, staged freezing) "
        "→ evaluation, on Ultralytics YOLOv8.",
        lifespan=lifespan,
        docs_url=None,  # served offline by imagerec.api_docs
        redoc_url=None,
    )
    app.state.settings = settings = settings or Settings()
    app.add_middleware(BodySizeLimit, max_bytes=settings.upload_max_bytes)
    app.add_middleware(Admission, max_concurrent=settings.api_max_concurrent, max_waiting=settings.api_max_waiting,
                       max_wait_seconds=settings.api_max_wait_seconds)  # queued before any route work
    app.add_middleware(BrowserGuard, allowed_hosts=settings.allowed_hosts,
                       cors_origins=settings.cors_origins)  # before Admission: a foreign Host/Origin waits for nothing
    app.state.metrics = build_metrics(app.state) if metrics_enabled(settings) else None  # read when scraped
    app.add_middleware(RequestObserver, metrics=app.state.metrics,
                       log_format=settings.log_format)  # outermost of all: every answer is logged and counted
    install_handlers(app)
    app.add_exception_handler(Overloaded, overloaded_response)  # 429 with Retry-After
    include_routers(app)
    if app.state.metrics is not None:
        app.include_router(metrics_router)  # GET /metrics
    install_api_docs(app)  # /docs, /redoc and their assets from this server; the bearer scheme in /openapi.json
    return app
