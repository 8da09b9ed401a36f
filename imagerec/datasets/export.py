"""A registered dataset written out in any format, as a zip the user downloads.

The dataset is read back as ``Samples`` (``registered_samples``) and handed to the format's exporter, which writes
zip members through a ``ZipSink``. The zip is built in the data dir's work folder and streamed from there; the
file goes once the response is sent. Images are stored as they are (they are compressed already), text is
deflated. What a format cannot hold is said in the answer's ``X-Imagerec-Export-Notes`` header.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

from imagerec.config import Settings
from imagerec.datasets import formats
from imagerec.datasets.formats import DatasetFormat
from imagerec.datasets.formats.base import ExportSource, Sample, parse_label_text
from imagerec.datasets.layout import is_image_name
from imagerec.datasets.models import Dataset
from imagerec.datasets.staging import DIFFICULT_FILE
from imagerec.datasets.validation import Metadata

SPLITS = ("train", "val", "test")
SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")  # a dataset name may hold anything; a file name may not


class ZipSink:
    def __init__(self, archive: zipfile.ZipFile):
        self.archive = archive
        self.names: set[str] = set()

    def add_file(self, arcname: str, path: Path) -> None:
        self._claim(arcname)
        compress = zipfile.ZIP_STORED if is_image_name(arcname) else zipfile.ZIP_DEFLATED
        self.archive.write(path, arcname, compress_type=compress)

    def add_bytes(self, arcname: str, data: bytes) -> None:
        self._claim(arcname)
        self.archive.writestr(arcname, data, compress_type=zipfile.ZIP_DEFLATED)

    def _claim(self, arcname: str) -> None:
        if arcname in self.names:  # an exporter bug, never the user's: two members would shadow each other
            raise RuntimeError(f"export wrote {arcname} twice")
        self.names.add(arcname)


def write_export(settings: Settings, dataset: Dataset, *, files_dir: Path, fmt: DatasetFormat) -> Path:
    """The zip of ``dataset`` in ``fmt``, in a fresh work folder the caller removes."""
    formats.require_task(fmt, dataset.task)
    work = settings.data_dir / "tmp" / uuid.uuid4().hex
    work.mkdir(parents=True)
    zip_path = work / f"{SAFE_NAME.sub('_', dataset.name)}-v{dataset.version}-{fmt}.zip"
    metadata = Metadata(dataset.class_names, kpt_shape=dataset.kpt_shape, flip_idx=dataset.flip_idx)
    source = ExportSource(name=dataset.name, task=dataset.task, metadata=metadata,
                          samples=lambda: registered_samples(files_dir, task=dataset.task, metadata=metadata),
                          work_dir=work)
    try:
        with zipfile.ZipFile(zip_path, "w") as archive:
            formats.module(fmt).export(source, ZipSink(archive))
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return zip_path


def registered_samples(files_dir: Path, *, task: str, metadata: Metadata) -> Iterator[Sample]:
    """Every image of a registered dataset with its objects, split by split, in name order."""
    if task == "classify":
        yield from _classify_samples(files_dir, metadata)
        return
    difficult = _difficult_flags(files_dir.parent / DIFFICULT_FILE)
    for split in SPLITS:
        images_dir = files_dir / "images" / split
        for image in sorted(path for path in images_dir.rglob("*") if is_image_name(path.name)):
            name = image.relative_to(images_dir).as_posix()
            label = files_dir / "labels" / split / f"{name.rsplit('.', 1)[0]}.txt"
            text = label.read_text() if label.is_file() else ""
            annotations = parse_label_text(text, task=task, kpt_shape=metadata.kpt_shape)
            for index in difficult.get(f"{split}/{name}", []):
                annotations[index].difficult = True
            yield Sample(name=name, split=split, image=image, annotations=annotations)


def _classify_samples(files_dir: Path, metadata: Metadata) -> Iterator[Sample]:
    for split in SPLITS:
        for class_id, class_name in enumerate(metadata.class_names):
            folder = files_dir / split / class_name
            for image in sorted(path for path in folder.rglob("*") if is_image_name(path.name)):
                yield Sample(name=image.relative_to(folder).as_posix(), split=split, image=image, class_id=class_id)


def _difficult_flags(path: Path) -> dict[str, list[int]]:
    return json.loads(path.read_text()) if path.is_file() else {}
