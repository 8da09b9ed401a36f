"""New versions of a registered dataset (which itself never changes).

A version starts as its parent's files made of links (``registration.link_tree``), loses the removed images,
takes the added and relabelled ones from a zip or a server folder in any format (an image it already holds, by
split and name or by a base name only one image has, is relabelled; its file is kept when the upload has only
the labels), and is checked like a first upload, except for what it holds unchanged (``inheritance``). Added
classes are appended to the parent's class list, so every class id the parent had keeps its meaning. Only new
images without a split are split.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from imagerec.config import Settings
from imagerec.datasets import registration, repository, staging, validation, versions
from imagerec.datasets.formats.base import Problems
from imagerec.datasets.inheritance import Inheritance
from imagerec.datasets.models import Dataset
from imagerec.datasets.schemas import ImportChoice
from imagerec.errors import Conflict, Unprocessable
from imagerec.files.service import resolve_allowed


def create_version(*, session: Session, settings: Settings, parent: Dataset, upload: BinaryIO | None = None,
                   path: str | None = None, remove: list[str] = (), choice: ImportChoice | None = None,
                   created_by: str | None = None, written: Path | None = None) -> Dataset:
    """The next version of ``parent``'s dataset; 422 when it would hold exactly what ``parent`` holds.
    ``written``: a folder the server wrote itself (a Label Studio pull), read as an upload is (its files moved)."""
    from imagerec.datasets import service  # service imports this module for its routes' sake

    if upload is None and path is None and written is None and not remove:
        raise Unprocessable("a new version needs added or relabelled images (a zip or a path) or images to remove")
    choice = choice or ImportChoice()
    source_root = resolve_allowed(settings.allowed_roots, path) if path is not None else written
    session.rollback()  # no write lock held while the upload is read (see service._require_free_name)
    with registration.workspace(settings) as work:
        staged = work / "dataset"
        registration.link_tree(service.storage_dir(settings, parent), staged)
        problems = Problems()
        removed = staging.remove_images(staged / "files", names=list(remove), task=parent.task)
        if upload is not None:
            source_root = registration.unpack(settings, work, upload)
        metadata, import_info = service.dataset_metadata(parent), {"format": None, "reason": "no images added"}
        if source_root is not None:
            metadata, import_info = _add(settings, staged, parent, source_root, choice, problems,
                                         link_images=path is not None)
        parent_manifest = service.manifest(settings, parent)
        inherited = _inheritance(service.storage_dir(settings, parent), staged, task=parent.task,
                                 parent_manifest=parent_manifest)
        finished = registration.finish(settings, staged, task=parent.task, metadata=metadata, problems=problems,
                                       import_info=import_info, inherited=inherited)
        changes = versions.diff(parent_manifest, finished.manifest)
        if versions.is_empty(changes) and metadata.class_names == parent.class_names:
            raise NothingChanged(f"the new version would equal version {parent.version}: nothing was added, "
                                "removed or relabelled")
        finished.summary["version"] = {"removed_names": removed, "counts": changes["counts"]}
        if repository.get(session, dataset_id=parent.id) is None:  # deleted while this version was staged
            raise Conflict(f"dataset {parent.id} was deleted while its new version was being made")
        dataset = Dataset(name=parent.name, task=parent.task, source=parent.source, source_path=parent.source_path,
                          parent_id=parent.id, version=repository.next_version(session, name=parent.name),
                          created_by=created_by)
        return service.insert(session, settings, staged, dataset, finished)


class NothingChanged(Unprocessable):
    """The version would hold exactly what its parent holds."""


def _inheritance(parent_dir: Path, staged: Path, *, task: str, parent_manifest: dict) -> Inheritance:
    parent_stats = registration.read_stats_file(parent_dir)
    if parent_stats is not None and "findings" not in parent_stats:
        parent_stats = None  # registered before stats kept their findings: this version counts everything again
    return Inheritance.scan(parent_dir / "files", staged / "files", task=task, manifest=parent_manifest,
                            parent_stats=parent_stats)


def _add(settings: Settings, staged: Path, parent: Dataset, source_root: Path, choice: ImportChoice,
         problems: Problems, *, link_images: bool) -> tuple[validation.Metadata, dict]:
    """Write the source's samples over the parent's files, in the parent's class ids (new classes appended)."""
    imported, import_info = registration.read_source(settings, source_root, task=parent.task,
                                                     link_images=link_images, choice=choice, problems=problems)
    incoming = imported.metadata
    if parent.task == "pose" and incoming.kpt_shape != parent.kpt_shape:
        raise Unprocessable(f"the added data has kpt_shape {incoming.kpt_shape}; the dataset has {parent.kpt_shape}")
    names = parent.class_names + [name for name in incoming.class_names if name not in parent.class_names]
    class_map = [names.index(name) for name in incoming.class_names]
    files = staged / "files"
    staging.write_samples(imported, files, task=parent.task, link_images=link_images, split_request=choice.split,
                          problems=problems, class_names=names,
                          existing=staging.ExistingImages.scan(files, task=parent.task),
                          class_map=None if class_map == list(range(len(class_map))) else class_map)
    return validation.Metadata(names, kpt_shape=parent.kpt_shape, flip_idx=parent.flip_idx), import_info
