"""Mounts every domain's router."""

from fastapi import FastAPI

from imagerec.datasets.router import router as datasets_router
from imagerec.files.router import router as files_router
from imagerec.system.router import router as system_router


def include_routers(app: FastAPI) -> None:
    app.include_router(system_router)
    app.include_router(datasets_router, prefix="/api/datasets", tags=["datasets"])
    app.include_router(files_router, prefix="/api/training", tags=["files"])
