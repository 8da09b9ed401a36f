from __future__ import annotations

from fastapi import APIRouter, status

from imagerec.deps import CallerDep, ExecutorDep, SessionDep, SettingsDep
from imagerec.tasks.schemas import TaskRead
from imagerec.training import service
from imagerec.training.schemas import (
    DistillationRequest,
    FreezeStrategyRequest,
    IncrementalRequest,
    TrainingMode,
    TrainingRequest,
)

router = APIRouter()


@router.post("/regular", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a regular training task")
def start_regular(request: TrainingRequest, session: SessionDep, settings: SettingsDep, executor: ExecutorDep,
                  caller: CallerDep):
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.regular, request=request,
                         created_by=caller.name)


@router.post("/freeze-strategy", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Start a staged-freezing fine-tuning task")
def start_freeze_strategy(request: FreezeStrategyRequest, session: SessionDep, settings: SettingsDep,
                          executor: ExecutorDep, caller: CallerDep):
    """One continuous training whose frozen layers and learning rate change by stage, at epoch boundaries.

    Give `stages` (each `{epochs, freeze, lr_scale, freeze_bn_stats}`) or a `preset` ("head-then-all",
    "gradual") that splits `epochs`. Layer groups come from the model's YAML: backbone, neck (the head section
    but its last layer; empty for classify, where "backbone+neck" is the backbone) and head (the last layer).
    The 202 body's `report` shows the resolved stages and any `warnings` (e.g. freezing a randomly initialised
    model); each epoch's metrics carry its `stage`.
    """
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.freeze_strategy,
                         request=request, created_by=caller.name)


@router.post("/distillation", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Train a student model to follow a registered teacher model")
def start_distillation(request: DistillationRequest, session: SessionDep, settings: SettingsDep,
                       executor: ExecutorDep, caller: CallerDep):
    """The student starts as in regular training (`architecture`, `pretrained_weights` or `base_model_id`) and
    learns from the labels of `dataset_id` plus the frozen `teacher_model_id`, which must share the dataset's task
    and class names (its size may differ). `losses` weighs the distillation terms, each off at weight 0:
    `cls` (class scores follow the teacher's softened scores), `box` (box distributions, where the teacher is
    confident; not for classify), `feature` (neck features through learned 1×1 adapters, `cwd` or `mse`) and
    `consistency` (predictions on the flipped image, flipped back, follow those on the original).

    Each epoch's metrics carry every term (`train_kd_cls`, `train_kd_box`, `train_kd_feature`,
    `train_consistency`); the finished task's report holds the teacher's and the student's validation metrics
    side by side; the registered model's `info` records the teacher and the losses. Its weights hold the student
    alone and load with plain Ultralytics.
    """
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.distillation,
                         request=request, created_by=caller.name)


@router.post("/incremental", response_model=TaskRead, status_code=status.HTTP_202_ACCEPTED,
             summary="Add classes or data to a registered model without forgetting")
def start_incremental(request: IncrementalRequest, session: SessionDep, settings: SettingsDep, executor: ExecutorDep,
                      caller: CallerDep):
    """The new model starts from all of `base_model_id`'s weights, its class outputs widened to the merged classes
    (old names keep their ids, new names are appended, a known name extends its class). It trains on `dataset_id`
    plus a class-balanced `replay` of old images (default sources: the datasets of the base model's lineage), with
    the base model's `pseudo_labels` for old-class objects the new images leave unlabelled, and `distill_old`: the
    frozen base model's class scores and box distributions on the old classes as an extra loss. Sending only
    `base_model_id` and `dataset_id` gets all of it.

    The 202 body's `report` shows the class mapping and the replay sources; the finished task's report adds the
    evaluation: old classes (on the replay sources' val images), new classes (on the new val images), overall,
    the base model on the same old-class images, and `retention` = new old-class mAP50-95 / base old-class mAP50-95
    (top-1 for classify).
    """
    return service.start(session, settings=settings, executor=executor, mode=TrainingMode.incremental,
                         request=request, created_by=caller.name)
