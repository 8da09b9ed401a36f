"""The FastAPI application. Resources (engine, executor) are built in ``lifespan``, never at import.

Nothing on this path imports torch or ultralytics: the server is ready in well under a second.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from imagerec import __version__
from imagerec.admission import Admission
from imagerec.annotation.limiter import Overloaded
from imagerec.annotation.router import overloaded_response
from imagerec.annotation.runtime import build_runtime
from imagerec.body_limit import BodySizeLimit
from imagerec.config import Settings
from imagerec.db import make_engine, make_session_factory
from imagerec.errors import install_handlers
from imagerec.executor import build_executor
from imagerec.migrations import upgrade
from imagerec.routes import include_routers


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    settings.ensure_dirs()
    upgrade(settings.sqlalchemy_url)
    engine = make_engine(settings.sqlalchemy_url, pool_size=settings.db_pool_size,
                         busy_timeout=settings.db_busy_timeout_seconds)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    executor = build_executor(settings, app.state.session_factory)
    app.state.executor = executor
    app.state.annotation_runtime = annotation_runtime = build_runtime(settings)  # models load on first use
    executor.start()
    try:
        yield
    finally:
        annotation_runtime.close()
        executor.stop()
        engine.dispose()


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(
        title="imagerec",
        version=__version__,
        description="Datasets → pre-labelling → training (regular, incremental, distillation, staged freezing) "
        "→ evaluation, on Ultralytics YOLOv8.",
        lifespan=lifespan,
    )
    app.state.settings = settings = settings or Settings()
    app.add_middleware(BodySizeLimit, max_bytes=settings.upload_max_bytes)
    app.add_middleware(Admission, max_concurrent=settings.api_max_concurrent, max_waiting=settings.api_max_waiting,
                       max_wait_seconds=settings.api_max_wait_seconds)  # outermost: queued before any work
    install_handlers(app)
    app.add_exception_handler(Overloaded, overloaded_response)  # 429 with Retry-After
    include_routers(app)
    return app
