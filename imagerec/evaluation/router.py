"""``/api/evaluations``: evaluate models on a dataset split, read the verdict, look at plots, images and likely
label errors, and compare two evaluations. The task behind an evaluation is controlled at ``/api/tasks``."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, status
from fastapi.responses import FileResponse, Response

from imagerec.deps import CallerDep, ExecutorDep, SessionDep, SettingsDep
from imagerec.errors import Unprocessable
from imagerec.evaluation import repository, service
from imagerec.evaluation.compare import compare
from imagerec.evaluation.overlay import draw_overlay
from imagerec.evaluation.schemas import (
    EvaluationImagePage,
    EvaluationImageRead,
    EvaluationRead,
    EvaluationRequest,
    LabelIssue,
    LabelIssuePage,
)
from imagerec.fields import MAX_DB_INT, IdPath, OffsetQuery
from imagerec.pillow import pillow_open

router = APIRouter()
Limit = Annotated[int, Query(ge=1, le=500)]
ImageIdPath = Annotated[int, Path(ge=0, le=MAX_DB_INT)]


@router.post("", response_model=EvaluationRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Evaluate a model (or several, on the same images) on a dataset split")
def start_evaluation(request: EvaluationRequest, session: SessionDep, settings: SettingsDep, executor: ExecutorDep,
                     caller: CallerDep):
    """Runs as a task of kind `evaluation` (progress, logs, cancel and delete at `/api/tasks/{task_id}`). With
    `model_ids`, the answer is the first model's evaluation; `group_ids` lists them all."""
    evaluations = service.start(session, settings=settings, executor=executor, request=request,
                                created_by=caller.name)
    answer = service.read(session, evaluations[0])
    answer.group_ids = [evaluation.id for evaluation in evaluations]
    return answer


@router.get("", response_model=list[EvaluationRead], summary="Evaluations, newest first")
def list_evaluations(session: SessionDep, model_id: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None,
                     dataset_id: Annotated[int | None, Query(ge=1, le=MAX_DB_INT)] = None, limit: Limit = 50,
                     offset: OffsetQuery = 0):
    rows = repository.list_evaluations(session, model_id=model_id, dataset_id=dataset_id, limit=limit, offset=offset)
    return [service.read(session, row) for row in rows]


@router.get("/compare", summary="Two evaluations of the same images: per metric and class, B − A")
def compare_evaluations(
    session: SessionDep,
    ids: Annotated[str, Query(pattern=r"^\d{1,18},\d{1,18}$", description="A,B: B is compared with A")],
    metric: Annotated[str, Query(pattern=r"^(map50_95|map50|precision|recall|f1)$")] = "map50_95",
    threshold: Annotated[float, Query(ge=0, le=1)] = 0.02,
):
    first, second = (int(part) for part in ids.split(","))
    if first == second:
        raise Unprocessable("give two different evaluations")
    a = service.get_or_404(session, evaluation_id=first)
    b = service.get_or_404(session, evaluation_id=second)
    return compare(a, b, images_a=repository.images_by_name(session, evaluation_id=a.id),
                   images_b=repository.images_by_name(session, evaluation_id=b.id), metric=metric,
                   threshold=threshold)


@router.get("/{evaluation_id}", response_model=EvaluationRead)
def get_evaluation(evaluation_id: IdPath, session: SessionDep):
    return service.read(session, service.get_or_404(session, evaluation_id=evaluation_id))


@router.get("/{evaluation_id}/plots", summary="The evaluation's plots (confusion matrices, curves)")
def list_plots(evaluation_id: IdPath, session: SessionDep, settings: SettingsDep) -> list[dict]:
    return service.plots(settings, service.get_or_404(session, evaluation_id=evaluation_id))


@router.get("/{evaluation_id}/plots/{name}.png", response_class=FileResponse, summary="One plot, as PNG")
def get_plot(evaluation_id: IdPath, name: Annotated[str, Path(max_length=100)], session: SessionDep,
             settings: SettingsDep):
    path = service.plot_file(settings, service.get_or_404(session, evaluation_id=evaluation_id), name)
    return FileResponse(path, media_type="image/png")


@router.get("/{evaluation_id}/images", response_model=EvaluationImagePage,
            summary="Per-image outcomes at the operating point, worst first")
def list_images(
    evaluation_id: IdPath,
    session: SessionDep,
    sort: Literal["errors", "fp", "fn", "score"] = "errors",
    class_name: Annotated[str | None, Query(alias="class", max_length=200)] = None,
    kind: Literal["fp", "fn", "wrong_class", "localisation"] | None = None,
    limit: Limit = 50,
    offset: OffsetQuery = 0,
):
    service.get_or_404(session, evaluation_id=evaluation_id)
    total, rows = repository.image_page(session, evaluation_id=evaluation_id, sort=sort, kind=kind,
                                        class_name=class_name, limit=limit, offset=offset)
    return EvaluationImagePage(evaluation_id=evaluation_id, total=total,
                               items=[EvaluationImageRead.model_validate(row) for row in rows])


@router.get("/{evaluation_id}/images/{image_id}/overlay.png", response_class=Response,
            summary="The image with its labels (solid) and predictions (dashed), coloured by outcome")
def get_overlay(evaluation_id: IdPath, image_id: ImageIdPath, session: SessionDep, settings: SettingsDep):
    evaluation = service.get_or_404(session, evaluation_id=evaluation_id)
    row = service.image_or_404(session, evaluation=evaluation, image_id=image_id)
    path = service.image_file(session, settings, evaluation, row.image)
    names = dict(enumerate(service.model_names(session, evaluation)))
    with pillow_open()(path) as image:
        png = draw_overlay(image, labels=row.detail.get("labels", []), predictions=row.detail.get("predictions", []),
                           pairs=row.detail.get("pairs", []), names=names, font_path=service.font_path())
    return Response(png, media_type="image/png")


@router.get("/{evaluation_id}/label-issues", response_model=LabelIssuePage,
            summary="Likely label errors: missing, wrong and spurious labels, most confident first")
def list_label_issues(evaluation_id: IdPath, session: SessionDep,
                      reason: Literal["missing_label", "wrong_label", "spurious_label"] | None = None,
                      limit: Limit = 50, offset: OffsetQuery = 0):
    evaluation = service.get_or_404(session, evaluation_id=evaluation_id)
    issues = [issue for issue in evaluation.label_issues or [] if reason is None or issue["reason"] == reason]
    return LabelIssuePage(evaluation_id=evaluation_id, total=len(issues),
                          items=[LabelIssue(**issue) for issue in issues[offset:offset + limit]])
