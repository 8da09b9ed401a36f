"""API-side checks of an incremental request: what the base model knew, where its old images are, and whether
the new dataset and the replay sources can be merged with it. Every problem is a 4xx before a task exists."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from imagerec.datasets import repository as datasets_repository
from imagerec.datasets.models import Dataset
from imagerec.errors import NotFound, Unprocessable
from imagerec.model_versions.models import ModelVersion
from imagerec.training.incremental.classes import ClassMerge, merge_classes
from imagerec.training.schemas import IncrementalRequest
from imagerec.vision import VisionTask


def lineage_dataset_ids(session: Session, base: ModelVersion) -> list[int]:
    """The datasets the base model and its ancestors were trained on (replay sources included), nearest first.
    A deleted ancestor is walked through (its record keeps its datasets); deleted datasets are left to the caller."""
    ids: list[int] = []
    seen: set[int] = set()
    model: ModelVersion | None = base
    while model is not None and model.id not in seen:
        seen.add(model.id)
        for dataset_id in [model.dataset_id, *(model.info or {}).get("replay_sources", [])]:
            if dataset_id is not None and dataset_id not in ids:
                ids.append(dataset_id)
        model = session.get(ModelVersion, model.parent_id) if model.parent_id else None
    return ids


def _train_images(dataset: Dataset) -> int:
    return int(((dataset.summary or {}).get("splits") or {}).get("train", {}).get("images", 0))


def _check_source(source: Dataset, *, dataset: Dataset, merge: ClassMerge) -> None:
    if source.task != dataset.task:
        raise Unprocessable(f"replay source dataset {source.id} is a {source.task} dataset but the new data "
                            f"(dataset {dataset.id}) is {dataset.task}")
    if dataset.task == VisionTask.pose and source.kpt_shape != dataset.kpt_shape:
        raise Unprocessable(f"replay source dataset {source.id} has keypoint shape {source.kpt_shape} but dataset "
                            f"{dataset.id} has {dataset.kpt_shape}")
    unknown = [name for name in source.class_names if name not in merge.names]
    if unknown:
        raise Unprocessable(f"replay source dataset {source.id} has classes {unknown} that neither the base model "
                            f"nor dataset {dataset.id} knows")


def _sources(session: Session, request: IncrementalRequest, base: ModelVersion, dataset: Dataset,
             warnings: list[str]) -> list[Dataset]:
    explicit = request.replay.source_dataset_ids
    ids = list(dict.fromkeys(explicit)) if explicit is not None else lineage_dataset_ids(session, base)
    sources: list[Dataset] = []
    for source_id in ids:
        source = datasets_repository.get(session, dataset_id=source_id)  # a deleted one's images are gone
        if source is None:
            if explicit is not None:
                raise NotFound(f"replay source dataset {source_id} not found")
            warnings.append(f"dataset {source_id} of the base model's lineage no longer exists; not replayed")
            continue
        if source.id == dataset.id:
            if explicit is None:
                continue  # the base model was trained on this very dataset: it is the new data already
            raise Unprocessable(f"dataset {source_id} is the new data; a replay source must be another dataset")
        sources.append(source)
    return sources


def _check_keypoints(session: Session, base: ModelVersion, dataset: Dataset) -> None:
    trained_on = session.get(Dataset, base.dataset_id) if base.dataset_id else None
    if dataset.task == VisionTask.pose and trained_on is not None and trained_on.kpt_shape != dataset.kpt_shape:
        raise Unprocessable(f"model {base.id} predicts keypoints of shape {trained_on.kpt_shape} but dataset "
                            f"{dataset.id} has {dataset.kpt_shape}")


def check(session: Session, request: IncrementalRequest, dataset: Dataset) -> dict[str, Any]:
    """Validates; resolves the replay sources into the request (so the task's params say which were used);
    returns the task's initial report: the class mapping and the sources."""
    base = session.get(ModelVersion, request.base_model_id)  # existence and task checked by the caller
    if _train_images(dataset) == 0:
        raise Unprocessable(f"dataset {dataset.id} has no training images")
    _check_keypoints(session, base, dataset)
    try:
        merge = merge_classes(list(base.class_names), list(dataset.class_names))
    except ValueError as error:
        raise Unprocessable(str(error)) from None
    warnings: list[str] = []
    sources = _sources(session, request, base, dataset, warnings)
    for source in sources:
        _check_source(source, dataset=dataset, merge=merge)
    if request.replay.enabled and not sources:
        raise Unprocessable(
            f"replay is enabled but there is nothing to replay: no dataset of model {base.id}'s lineage is left "
            "(give replay.source_dataset_ids, or set replay.enabled to false)"
        )
    request.replay.source_dataset_ids = [source.id for source in sources]
    if dataset.task == VisionTask.classify and request.pseudo_labels.enabled:
        warnings.append("pseudo-labels do not apply to classification (one label per image); skipped")
    return {**class_report(merge), "replay_sources": request.replay.source_dataset_ids, "warnings": warnings}


def class_report(merge: ClassMerge) -> dict[str, Any]:
    return {
        "classes": merge.names,
        "old_classes": merge.names[: merge.old_count],
        "added_classes": merge.added,
        "extended_classes": merge.extended,
        "new_dataset_class_ids": merge.new_to_merged,  # the new dataset's class id → the merged id
    }
