"""Checks a staged dataset and reports every problem, each naming the file (relative path) and line.

``read_metadata`` turns the user's data.yaml (or, for classify, the class folders) into class names, kpt_shape
and flip_idx; ``validate`` then reads every image header and label line. Nothing here trusts the user's YAML
beyond those three keys; ``nc``, when given, must agree with ``names``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import yaml
from PIL import Image

from imagerec.datasets.layout import SPLITS, files_under, is_image_name
from imagerec.errors import Unprocessable
from imagerec.pillow import pillow_open

MAX_REPORTED = 100
TOLERANCE = 1e-6
MIN_SIDE = 10  # Ultralytics refuses images under 10 pixels a side
PIL_FORMATS = {"AVIF", "BMP", "DNG", "HEIF", "JPEG", "JPEG2000", "MPO", "PNG", "TIFF", "WEBP"}


@dataclass(frozen=True)
class Metadata:
    class_names: list[str]
    kpt_shape: list[int] | None = None
    flip_idx: list[int] | None = None


@dataclass
class SplitCounts:
    images: int = 0
    instances: int = 0
    backgrounds: int = 0


class Inherited(Protocol):
    """What a new version takes from its parent (``inheritance.Inheritance``)."""

    def instances(self, key: str) -> int | None:
        """The instances of an image and label held unchanged (by manifest key), None for any other."""

    def image_checked(self, path: Path) -> bool:
        """Whether the image file is one the parent holds (a relabelled image keeps its file)."""


@dataclass
class Report:
    errors: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    splits: dict[str, SplitCounts] = field(default_factory=lambda: {split: SplitCounts() for split in SPLITS})

    suppressed_warnings: int = 0
    # a new version: what it holds unchanged from its parent was checked when the parent registered
    inherited: Inherited | None = None

    def error(self, file: str, message: str, line: int | None = None) -> None:
        self.errors.append({"file": file, "line": line, "message": message})

    def warn(self, message: str) -> None:
        if len(self.warnings) < MAX_REPORTED:
            self.warnings.append(message)
        else:
            self.suppressed_warnings += 1

    def raise_if_invalid(self) -> None:
        if not self.errors:
            return
        first = self.errors[0]
        where = first["file"] + (f":{first['line']}" if first["line"] else "")
        count = len(self.errors)
        raise Unprocessable(
            f"dataset is invalid: {count} problem{'s' if count > 1 else ''} (first: {where}: {first['message']})",
            details=self.errors[:MAX_REPORTED],
        )

    def summary(self) -> dict:
        splits = {name: vars(counts).copy() for name, counts in self.splits.items()}
        more = [f"… and {self.suppressed_warnings} more warnings"] if self.suppressed_warnings else []
        return {"splits": splits, "warnings": self.warnings + more}


# --- metadata -------------------------------------------------------------------------------------------------


def read_metadata(*, task: str, data_yaml: tuple[str, bytes] | None, files_dir: Path) -> Metadata:
    """Class names, kpt_shape and flip_idx; 422 listing every problem with them."""
    if task == "classify":
        return Metadata(class_names=_class_folders(files_dir / "train"))
    if data_yaml is None:
        raise Unprocessable(f"a {task} dataset needs a data.yaml with 'names' at its top level")
    yaml_name, content = data_yaml
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as error:
        raise Unprocessable(f"{yaml_name} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise Unprocessable(f"{yaml_name} must hold a mapping with 'names'")
    problems: list[str] = []
    names = _parse_names(data.get("names"), problems)
    _check_nc(data.get("nc"), names, problems)
    kpt_shape = flip_idx = None
    if task == "pose":
        kpt_shape = _parse_kpt_shape(data.get("kpt_shape"), problems)
        if kpt_shape is not None and data.get("flip_idx") is not None:
            flip_idx = _parse_flip_idx(data["flip_idx"], kpt_shape[0], problems)
    if problems:
        details = [{"file": yaml_name, "line": None, "message": problem} for problem in problems]
        raise Unprocessable(f"{yaml_name}: {'; '.join(problems)}", details=details)
    return Metadata(class_names=names, kpt_shape=kpt_shape, flip_idx=flip_idx)


def _class_folders(train_dir: Path) -> list[str]:
    return sorted(entry.name for entry in train_dir.iterdir() if entry.is_dir()) if train_dir.is_dir() else []


def _parse_names(raw: object, problems: list[str]) -> list[str]:
    if isinstance(raw, dict):
        if sorted(raw) != list(range(len(raw))):
            problems.append("'names' as a mapping must have the integer keys 0..n-1")
            return []
        raw = [raw[index] for index in range(len(raw))]
    if not isinstance(raw, list) or not raw:
        problems.append("'names' is missing or empty: give a list of class names")
        return []
    names = [str(name).strip() if isinstance(name, (str, int, float)) else "" for name in raw]
    if any(not name for name in names):
        problems.append("every class name must be a non-empty string")
    return names


def _check_nc(raw: object, names: list[str], problems: list[str]) -> None:
    """``nc`` is optional, but one that disagrees with ``names`` means the YAML is not the one the labels were
    written for (Ultralytics refuses such a YAML too), so it is a problem rather than silently overruled."""
    if raw is None:
        return
    if type(raw) is not int or raw < 0:  # type(): YAML's true is a bool, and bool is an int to isinstance
        problems.append(f"'nc' must be a non-negative integer (the number of classes), found {raw!r:.50}")
    elif names and raw != len(names):
        problems.append(f"'nc' is {raw} but 'names' lists {len(names)} classes")


def _parse_kpt_shape(raw: object, problems: list[str]) -> list[int] | None:
    valid = (
        isinstance(raw, list) and len(raw) == 2 and all(type(value) is int for value in raw)
        and raw[0] >= 1 and raw[1] in (2, 3)
    )
    if not valid:
        problems.append("pose datasets need 'kpt_shape: [K, 2]' or '[K, 3]' with K >= 1")
        return None
    return list(raw)


def _parse_flip_idx(raw: object, keypoints: int, problems: list[str]) -> list[int] | None:
    valid = isinstance(raw, list) and all(type(value) is int for value in raw)
    if not valid or sorted(raw) != list(range(keypoints)):
        problems.append(f"'flip_idx' must be a permutation of 0..{keypoints - 1}")
        return None
    return list(raw)


# --- files ----------------------------------------------------------------------------------------------------


def validate(files_dir: Path, *, task: str, metadata: Metadata, max_pixels: int,
             report: Report | None = None) -> Report:
    """Check every image and label under ``files_dir`` (the staged layout); problems go into the report."""
    report = report or Report()
    test_folder = files_dir / ("test" if task == "classify" else "images/test")
    for split in (*SPLITS, "test") if test_folder.is_dir() else SPLITS:
        report.splits.setdefault(split, SplitCounts())
        if task == "classify":
            _validate_classify_split(files_dir, split, metadata, report, max_pixels)
        else:
            _validate_labelled_split(files_dir, split, task, metadata, report, max_pixels)
    return report


def _validate_classify_split(files_dir: Path, split: str, metadata: Metadata, report: Report, max_pixels: int) -> None:
    counts = report.splits[split]
    split_dir = files_dir / split
    for image in _images(split_dir):
        _check_image_into(image, files_dir, report, max_pixels)
        counts.images += 1
        counts.instances += 1
    if not counts.images:
        report.error(split, "split holds no images in class folders (expected <split>/<class>/<image>)")
    unknown = sorted(set(_class_folders(split_dir)) - set(metadata.class_names))
    if unknown:
        report.error(split, f"classes {unknown} are not among the train classes {metadata.class_names}")


def _validate_labelled_split(
    files_dir: Path, split: str, task: str, metadata: Metadata, report: Report, max_pixels: int
) -> None:
    counts = report.splits[split]
    labels_dir = files_dir / "labels" / split
    images_dir = files_dir / "images" / split
    used_labels: set[str] = set()
    for name in _image_names(images_dir):
        label_name = f"{name.rpartition('.')[0]}.txt"
        used_labels.add(label_name)
        instances = report.inherited.instances(f"{split}/{name}") if report.inherited else None
        if instances is None:
            _check_image_into(images_dir / name, files_dir, report, max_pixels)
            label = labels_dir / label_name
            instances = _check_label_file(label, files_dir, task, metadata, report) if label.is_file() else 0
        counts.images += 1
        counts.instances += instances
        counts.backgrounds += int(instances == 0)
    if not counts.images:
        report.error(f"images/{split}", "split holds no images")
    elif not counts.instances:
        report.warn(f"{split}: no image has a label; every image is a background")
    orphans = sorted(name for name in files_under(labels_dir) if name.endswith(".txt") and name not in used_labels)
    if orphans:
        report.warn(f"labels/{split}: {len(orphans)} label files have no image and were ignored "
                    f"(e.g. labels/{split}/{orphans[0]})")


def _images(folder: Path) -> Iterable[Path]:
    return [folder / name for name in _image_names(folder)]


def _image_names(folder: Path) -> list[str]:
    return sorted(name for name in files_under(folder) if is_image_name(name)) if folder.is_dir() else []


def _check_image_into(image: Path, files_dir: Path, report: Report, max_pixels: int) -> None:
    if report.inherited is not None and report.inherited.image_checked(image):
        return
    rel = image.relative_to(files_dir).as_posix()
    problem, warning = check_image(image, max_pixels=max_pixels)
    if problem:
        report.error(rel, problem)
    if warning:
        report.warn(f"{rel}: {warning}")


def check_image(path: Path, *, max_pixels: int) -> tuple[str | None, str | None]:
    """(error, warning) for one image file: unreadable, too many pixels, too small, truncated JPEG."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with pillow_open()(path) as image:  # reads the header only
                width, height, image_format = image.width, image.height, image.format
                if width * height > max_pixels:
                    return f"image has {width}x{height} pixels, more than the limit of {max_pixels}", None
                image.verify()
    except Image.DecompressionBombError:
        return "image has too many pixels to open safely (Pillow's decompression-bomb limit)", None
    except Exception as error:  # decoders raise many kinds of errors on hostile or broken files
        return f"image cannot be read ({type(error).__name__}: {error})", None
    if min(width, height) < MIN_SIDE:
        return f"image is {width}x{height} pixels; each side must be at least {MIN_SIDE}", None
    if image_format not in PIL_FORMATS:
        return f"image format {image_format} is not supported", None
    if image_format == "JPEG" and not _ends_with_jpeg_eoi(path):
        return None, "JPEG is truncated (no end marker); Ultralytics will re-save a repaired copy"
    return None, None


def _ends_with_jpeg_eoi(path: Path) -> bool:
    with open(path, "rb") as file:
        file.seek(-2, 2)
        return file.read() == b"\xff\xd9"


# --- labels ---------------------------------------------------------------------------------------------------


def _check_label_file(label: Path, files_dir: Path, task: str, metadata: Metadata, report: Report) -> int:
    """Report every bad line of one label file; returns the number of objects it holds."""
    rel = label.relative_to(files_dir).as_posix()
    try:
        text = label.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError) as error:
        report.error(rel, f"label file cannot be read as UTF-8 text ({error})")
        return 0
    instances = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        problem = check_label_line(line.split(), task=task, class_count=len(metadata.class_names),
                                   kpt_shape=metadata.kpt_shape)
        if problem:
            report.error(rel, problem, line=number)
        else:
            instances += 1
    return instances


def check_label_line(fields: list[str], *, task: str, class_count: int, kpt_shape: list[int] | None) -> str | None:
    """The problem with one label line (split into fields), or None when it is valid for ``task``."""
    count_problem = _field_count_problem(len(fields), task, kpt_shape)
    if count_problem:
        return count_problem
    try:
        values = [float(value) for value in fields]
    except ValueError:
        bad = next(value for value in fields if not _is_number(value))
        return f"{bad!r} is not a number"
    if not all(math.isfinite(value) for value in values):
        return "values must be finite numbers"
    class_id = values[0]
    if not class_id.is_integer() or not 0 <= class_id < class_count:
        return f"class id {fields[0]} is out of range: the dataset has {class_count} classes (0..{class_count - 1})"
    return _coordinate_problem(values[1:], task, kpt_shape)


def _field_count_problem(count: int, task: str, kpt_shape: list[int] | None) -> str | None:
    if task == "segment":
        if count < 7 or count % 2 == 0:
            return f"expected a class id and at least 3 x y pairs (an odd number of values), found {count} values"
        return None
    expected = 5 + (kpt_shape[0] * kpt_shape[1] if task == "pose" and kpt_shape else 0)
    if count != expected:
        shape = "class cx cy w h" + (f" and {kpt_shape[0]}x{kpt_shape[1]} keypoint values" if task == "pose" else "")
        return f"expected {expected} values ({shape}), found {count}"
    return None


def _coordinate_problem(values: list[float], task: str, kpt_shape: list[int] | None) -> str | None:
    coordinates = values
    if task == "pose" and kpt_shape and kpt_shape[1] == 3:
        keypoints = values[4:]
        visibilities = keypoints[2::3]
        if any(v not in (0.0, 1.0, 2.0) for v in visibilities):
            return "keypoint visibility must be 0, 1 or 2"
        coordinates = values[:4] + [v for i, v in enumerate(keypoints) if i % 3 != 2]
    outside = [v for v in coordinates if not -TOLERANCE <= v <= 1 + TOLERANCE]
    if outside:
        return f"coordinate {outside[0]:g} is outside [0, 1] (coordinates must be normalised to the image size)"
    if task != "segment" and (values[2] <= 0 or values[3] <= 0):
        return "box width and height must be greater than 0"
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
