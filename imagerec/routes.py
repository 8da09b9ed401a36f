"""Mounts every domain's router."""

from fastapi import FastAPI

from imagerec.annotation.router import router as annotation_router
from imagerec.auth.deps import by_method, require
from imagerec.auth.router import router as keys_router
from imagerec.auth.scopes import Scope
from imagerec.datasets.router import router as datasets_router
from imagerec.evaluation.router import router as evaluations_router
from imagerec.files.router import router as files_router
from imagerec.labelstudio.api_router import router as labelstudio_api_router
from imagerec.labelstudio.router import router as labelstudio_router
from imagerec.model_versions.router import router as models_router
from imagerec.prelabel.router import router as prelabel_router
from imagerec.system.router import router as system_router
from imagerec.tasks.models import TaskKind
from imagerec.tasks.router import make_router as make_tasks_router
from imagerec.training.artifacts import router as artifacts_router
from imagerec.training.router import router as training_router
from imagerec.workers.router import router as workers_router


def include_routers(app: FastAPI) -> None:
    """Every router with the scopes it needs (see ``imagerec.auth.scopes``); ``/health`` and the docs are open."""
    reads, trains = (Scope.read,), (Scope.train,)
    tracked = by_method(read=reads, write=trains)  # list and download with read; change with train
    annotation_jobs = by_method(read=(Scope.read, Scope.annotate), write=(Scope.annotate,))
    app.include_router(system_router)
    app.include_router(keys_router, prefix="/api/keys", tags=["keys"], dependencies=[require(Scope.admin)])
    app.include_router(datasets_router, prefix="/api/datasets", tags=["datasets"], dependencies=[tracked])
    app.include_router(training_router, prefix="/api/training", tags=["training"], dependencies=[require(*trains)])
    app.include_router(make_tasks_router(TaskKind.training), prefix="/api/training/tasks", tags=["training"],
                       dependencies=[tracked])
    app.include_router(artifacts_router, prefix="/api/training/tasks", tags=["training"], dependencies=[tracked])
    app.include_router(files_router, prefix="/api/training", tags=["files"], dependencies=[require(*trains)])
    app.include_router(make_tasks_router(None), prefix="/api/tasks", tags=["tasks"], dependencies=[
        by_method(read=(Scope.read, Scope.annotate), write=(Scope.train, Scope.annotate))])
    app.include_router(models_router, prefix="/api/models", tags=["models"], dependencies=[tracked])
    app.include_router(evaluations_router, prefix="/api/evaluations", tags=["evaluations"], dependencies=[tracked])
    app.include_router(annotation_router, prefix="/api", tags=["annotation"],  # POST /api/auto_annotate
                       dependencies=[require(Scope.annotate)])
    app.include_router(prelabel_router, prefix="/api/annotation/jobs", tags=["annotation"],
                       dependencies=[annotation_jobs])
    app.include_router(make_tasks_router(TaskKind.annotation), prefix="/api/annotation/jobs", tags=["annotation"],
                       dependencies=[annotation_jobs])
    app.include_router(labelstudio_router, prefix="/labelstudio", tags=["labelstudio"],
                       dependencies=[require(Scope.annotate)])
    # the same protocol for one project: Label Studio's GET /versions names none (see labelstudio.router)
    app.include_router(labelstudio_router, prefix="/labelstudio/projects/{ls_project}", include_in_schema=False,
                       dependencies=[require(Scope.annotate)])
    app.include_router(labelstudio_api_router, prefix="/api/labelstudio", tags=["labelstudio"])
    app.include_router(workers_router, prefix="/api/workers", tags=["workers"], dependencies=[require(*reads)])
