"""Classification image folders: ``<split>/<class>/<image>`` (torchvision's ImageFolder, Ultralytics' classify
layout), or ``<class>/<image>`` with no split folders (then the whole set is split).

Split folders are ``train``, ``val`` (also ``valid``, ``validation``) and ``test``. The class names are the class
folders of every split, sorted, so a class seen only in ``val`` is still a class (the validator then says it has
no training images). Images deeper inside a class folder belong to that class; loose images are ignored.
"""

from __future__ import annotations

from imagerec.datasets.formats.base import (
    SPLIT_WORDS,
    ExportSink,
    ExportSource,
    Imported,
    ImportOptions,
    Problems,
    Sample,
    SourceTree,
)
from imagerec.datasets.validation import Metadata
from imagerec.errors import Unprocessable


class ImageFolderImporter:
    def detect(self, tree: SourceTree, *, task: str) -> str | None:
        if task != "classify":
            return None
        splits = sorted({_split_folder(rel) for rel in tree.images()} - {None})
        if splits:
            return f"ImageFolder: {', '.join(splits)} hold class folders"
        classes = _unsplit_classes(tree)
        if len(classes) >= 2:
            return f"ImageFolder: {len(classes)} class folders and no split folders (the images will be split)"
        return None

    def read(self, tree: SourceTree, *, options: ImportOptions, problems: Problems) -> Imported:
        entries = [(rel, _place(rel)) for rel in sorted(tree.images())]
        placed = [(rel, place) for rel, place in entries if place is not None]
        loose = len(entries) - len(placed)
        if loose:
            problems.warn(f"{loose} images outside any class folder were ignored (e.g. "
                          f"{next(rel for rel, place in entries if place is None)})")
        if not placed:
            raise Unprocessable("no images in class folders: expected <split>/<class>/<image> or <class>/<image>")
        names = sorted({place[1] for _, place in placed})
        class_ids = {name: index for index, name in enumerate(names)}
        samples = [Sample(name=place[2], split=place[0], image=tree.get(rel), class_id=class_ids[place[1]],
                          source=rel) for rel, place in placed]
        return Imported(metadata=Metadata(class_names=names), samples=samples)


IMPORTER = ImageFolderImporter()


def _split_folder(rel: str) -> str | None:
    parts = rel.split("/")
    return SPLIT_WORDS.get(parts[0].lower()) if len(parts) >= 3 else None


def _unsplit_classes(tree: SourceTree) -> set[str]:
    return {rel.split("/")[0] for rel in tree.images() if rel.count("/") >= 1 and _split_folder(rel) is None}


def _place(rel: str) -> tuple[str | None, str, str] | None:
    """(split, class, name inside the class folder) of an image, None when it is in no class folder."""
    parts = rel.split("/")
    split = _split_folder(rel)
    if split is not None:
        return split, parts[1], "/".join(parts[2:])
    if len(parts) >= 2 and parts[0].lower() not in SPLIT_WORDS:
        return None, parts[0], "/".join(parts[1:])
    return None


def export(source: ExportSource, sink: ExportSink) -> None:
    names = source.metadata.class_names
    for sample in source.samples():
        sink.add_file(f"{sample.split}/{names[sample.class_id]}/{sample.name}", sample.image)
