"""Label Studio JSON and JSON-MIN exports, for every task.

A ``.json`` whose top level is a list of tasks. JSON: ``{"id", "data": {"image": url, "split"?}, "annotations":
[{"result": [region, …], "was_cancelled"}]}``: the first annotation not cancelled counts (a warning counts tasks with
several); no annotation, a background. JSON-MIN: ``{"image": url, "id", <control name>: value, …}``, a value being a
list of regions (``value`` keys and ``original_width/height`` in one dict) or, for choices, a string or
``{"choices": […]}``. A region's kind is its ``type`` (JSON) or the value key it holds (JSON-MIN):
``rectanglelabels``, ``polygonlabels``, ``brushlabels``, ``keypointlabels``, ``choices``. Other kinds (``textarea``,
``ellipselabels``…) and kinds the task cannot use are counted in a warning and skipped.

Coordinates are percent (0–100). A rectangle's x/y is its top-left corner, ``rotation`` turns it about that corner
(degrees, clockwise on screen, in pixels): detect takes the corners' extent, segment the corners as a polygon.
Polygons are ``points``; brushes are Label Studio's RLE of an RGBA canvas (``brush``): the largest outline is the
polygon. Pose: each rectangle is an instance with the ``keypointlabels`` whose ``parentID`` is its id (without one:
the task's single rectangle); keypoints are ordered by label, kpt_shape is ``[labels, 3]`` unless the request gives
one; a present point is visible (2), a missing one ``0 0 0``. Classify: the task's first choice.

Images are found by the URL's path (or ``d`` of ``/data/local-files/?d=…``) with ``SourceTree.find_image``, which
also strips Label Studio's ``<8 hex>-`` upload prefix; a missing one gives a sample without an image (the writer
counts them); images no task names are ignored (a warning). Sizes: the regions' ``original_width/height``, else the
image header. Class names: the sorted labels of the kinds the task uses (pose: the rectangles'), after the order of
a label config (an XML whose root is ``<View>``, as ``labelstudio_export`` writes) when the upload holds one.
Splits: ``data.split`` (train/val/test), else the writer splits. Export: see ``labelstudio_export``.
"""

from __future__ import annotations

import io
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote, urlsplit

import ijson

from imagerec.datasets.formats.base import (
    SPLIT_WORDS,
    SPLITS,
    Annotation,
    Imported,
    ImportOptions,
    Problems,
    Sample,
    SourceTree,
    box_from_corners,
    clip_unit,
    strip_ls_prefix,  # the one rule for Label Studio's upload names
)
from imagerec.datasets.formats.labelstudio_export import config_labels, export
from imagerec.datasets.formats.labelstudio_geometry import Size, outline
from imagerec.datasets.validation import Metadata
from imagerec.errors import Unprocessable

__all__ = ["IMPORTER", "export"]

JSON_MAX_BYTES = 512 * 1024 * 1024
SNIFF_BYTES = 256 * 1024
SNIFF_TASKS = 50
SHAPES = ("rectanglelabels", "polygonlabels", "brushlabels")
KINDS = (*SHAPES, "keypointlabels", "choices")
USABLE = {"detect": SHAPES, "segment": SHAPES, "pose": ("rectanglelabels", "keypointlabels"), "classify": ("choices",)}
CLASS_KINDS = {"detect": SHAPES, "segment": SHAPES, "pose": ("rectanglelabels",), "classify": ("choices",)}
# JSON-MIN mixes the task's data and bookkeeping with the control tags' values; these are never a control's
MIN_META_KEYS = frozenset({"id", "image", "split", "annotator", "annotation_id", "created_at", "updated_at",
                           "lead_time", "file_upload", "drafts", "predictions", "meta"})


@dataclass
class _Region:
    kind: str
    value: dict
    id: str | None = None
    parent_id: str | None = None
    size: tuple[int, int] | None = None  # original_width, original_height

    @property
    def label(self) -> str:
        if not _labelled(self):
            raise ValueError(f"'{self.kind}' names no label")
        return self.value[self.kind][0]


@dataclass
class _Task:
    source: str
    image_url: str
    split: str | None
    regions: list[_Region] = field(default_factory=list)


class LabelStudioImporter:
    def detect(self, tree: SourceTree, *, task: str) -> str | None:
        for rel in tree.with_suffix(".json"):
            flavour = _flavour(_head_tasks(tree, rel))
            if flavour:
                return f"Label Studio: {rel} is a {flavour} export"
        return None

    def read(self, tree: SourceTree, *, options: ImportOptions, problems: Problems) -> Imported:
        counts: Counter[str] = Counter()
        tasks = [task for rel in tree.with_suffix(".json") for task in _tasks(tree, rel, counts)]
        if not tasks:
            raise Unprocessable("no Label Studio tasks were found: expected a JSON or JSON-MIN export (.json)")
        config = config_labels(tree)
        names = _ordered(config, _used_labels(tasks, CLASS_KINDS[options.task]), CLASS_KINDS[options.task])
        keypoints = _ordered(config, _used_labels(tasks, ("keypointlabels",)), ("keypointlabels",))
        metadata = _metadata(options, names, keypoints)
        builder = _Builder(tree, task=options.task, metadata=metadata, keypoints=keypoints, problems=problems)
        samples = [sample for task in tasks if (sample := builder.sample(task)) is not None]
        builder.report(counts, tree)
        return Imported(metadata=metadata, samples=samples)


IMPORTER = LabelStudioImporter()


# --- tasks ----------------------------------------------------------------------------------------------------


def _load(tree: SourceTree, rel: str) -> object:
    try:
        return json.loads(tree.read_text(rel, max_bytes=JSON_MAX_BYTES))
    except (ValueError, UnicodeDecodeError):  # not JSON, or too large: not a Label Studio export
        return None


def _head_tasks(tree: SourceTree, rel: str) -> list | None:
    """The first tasks of a file that starts as a JSON list, read from its head only (detection looks at every
    .json of the source, and an export can be hundreds of megabytes)."""
    with open(tree.files[rel], "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"["):
        return None
    tasks = []
    try:
        for task in ijson.items(io.BytesIO(head), "item"):
            tasks.append(task)
            if len(tasks) >= SNIFF_TASKS:
                break
    except (ijson.JSONError, UnicodeDecodeError):  # the head ends inside a task, or it is not JSON after all
        pass
    if not tasks and len(head) == SNIFF_BYTES:  # a first task larger than the head (a huge brush mask)
        loaded = _load(tree, rel)
        return loaded if isinstance(loaded, list) else None
    return tasks


def _flavour(data: object) -> str | None:
    if not isinstance(data, list) or not data or not all(isinstance(task, dict) for task in data):
        return None
    if all(isinstance(task.get("data"), dict) for task in data):
        return "JSON"
    if all("image" in task for task in data):
        return "JSON-MIN"
    return None


def _tasks(tree: SourceTree, rel: str, counts: Counter[str]) -> list[_Task]:
    data = _load(tree, rel)
    flavour = _flavour(data)
    if flavour is None:
        return []
    read = _json_task if flavour == "JSON" else _min_task
    return [read(raw, f"{rel} task {raw.get('id', index)}", counts) for index, raw in enumerate(data)]


def _split(raw: object) -> str | None:
    return SPLIT_WORDS.get(str(raw).lower()) if raw is not None else None


def _json_task(raw: dict, source: str, counts: Counter[str]) -> _Task:
    data = raw["data"]
    annotations = [entry for entry in raw.get("annotations") or []
                   if isinstance(entry, dict) and not entry.get("was_cancelled")]
    if len(annotations) > 1:
        counts["several"] += 1
    result = annotations[0].get("result") or [] if annotations else []
    regions = [_Region(str(region.get("type", "")).lower(), region.get("value") or {}, region.get("id"),
                       region.get("parentID"), _size(region)) for region in result if isinstance(region, dict)]
    return _Task(source, str(data.get("image", "")), _split(data.get("split")), regions)


def _min_task(raw: dict, source: str, counts: Counter[str]) -> _Task:
    task = _Task(source, str(raw.get("image", "")), _split(raw.get("split")))
    for key, entry in raw.items():
        if key in MIN_META_KEYS:
            continue
        if isinstance(entry, str):  # a single choice is written as its label
            task.regions.append(_Region("choices", {"choices": [entry]}))
        elif isinstance(entry, dict) and "choices" in entry:
            task.regions.append(_Region("choices", entry))
        elif isinstance(entry, list):
            task.regions += [_min_region(key, item) for item in entry]
    return task


def _min_region(key: str, item: object) -> _Region:
    if not isinstance(item, dict):
        return _Region(key, {})  # textarea and friends: a list of strings
    kind = next((kind for kind in KINDS if kind in item), None)
    kind = kind or next((name for name in item if name.endswith("labels")), key)
    return _Region(kind, item, item.get("id"), item.get("parentID"), _size(item))


def _size(region: dict) -> tuple[int, int] | None:
    width, height = region.get("original_width"), region.get("original_height")
    if isinstance(width, int | float) and isinstance(height, int | float) and width > 0 and height > 0:
        return int(width), int(height)
    return None


# --- class names ----------------------------------------------------------------------------------------------


def _used_labels(tasks: list[_Task], kinds: tuple[str, ...]) -> set[str]:
    regions = [region for task in tasks for region in task.regions if region.kind in kinds]
    return {region.value[region.kind][0] for region in regions if _labelled(region)}


def _labelled(region: _Region) -> bool:
    labels = region.value.get(region.kind)
    return isinstance(labels, list) and bool(labels) and isinstance(labels[0], str)


def _natural(label: str) -> list:
    """kp2 before kp10: keypoint labels are often numbered."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", label)]


def _ordered(config: dict[str, list[str]], used: set[str], kinds: tuple[str, ...]) -> list[str]:
    listed = list(dict.fromkeys(label for kind in kinds for label in config.get(kind, [])))
    return listed + sorted(used - set(listed), key=_natural)


def _metadata(options: ImportOptions, names: list[str], keypoints: list[str]) -> Metadata:
    if options.task != "pose":
        return Metadata(class_names=names)
    kpt_shape = options.kpt_shape or [len(keypoints), 3]
    if not keypoints and options.kpt_shape is None:
        raise Unprocessable("a pose dataset needs keypointlabels regions (or 'kpt_shape' in the request)")
    if len(keypoints) > kpt_shape[0]:
        raise Unprocessable(f"the tasks use {len(keypoints)} keypoint labels ({', '.join(keypoints)}) but "
                            f"kpt_shape is {kpt_shape}")
    return Metadata(class_names=names, kpt_shape=kpt_shape, flip_idx=options.flip_idx)


# --- samples --------------------------------------------------------------------------------------------------


class _Builder:
    """Turns tasks into samples, counting what it skips for one warning per kind of problem."""

    def __init__(self, tree: SourceTree, *, task: str, metadata: Metadata, keypoints: list[str],
                 problems: Problems):
        self.tree, self.task, self.problems = tree, task, problems
        self.class_ids = {name: index for index, name in enumerate(metadata.class_names)}
        self.keypoint_ids = {name: index for index, name in enumerate(keypoints)}
        self.kpt_shape = metadata.kpt_shape
        self.skipped: Counter[str] = Counter()
        self.named: dict[str, str] = {}  # image rel → sample name
        self.names: set[tuple[str | None, str]] = set()

    def sample(self, task: _Task) -> Sample | None:
        rel = self.tree.find_image(_url_path(task.image_url)) if task.image_url else None
        if rel is None:  # a new version may hold the image (a relabel); else the writer counts it missing
            name = strip_ls_prefix(task.image_url.rpartition("/")[2]) or task.source
            sample = Sample(name=name, split=task.split, image=None, source=task.source)
        else:
            sample = Sample(name=self._name(rel, task.split), split=task.split, image=self.tree.get(rel),
                            source=task.source)
        regions = [region for region in task.regions if self._usable(region)]
        try:
            if self.task == "classify":
                return self._classified(sample, regions)
            read = self._pose if self.task == "pose" else self._shapes
            sample.annotations = read(regions, Size(sample.image, regions))
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError, OSError) as error:
            if sample.image is None:  # no image to measure: such a region is only readable with its size
                self.problems.warn(f"{task.source}: its image is not in the upload and a region cannot be read "
                                   f"without it ({error!r})")
            else:  # the import fails with this error; the sample still counts as named
                self.problems.error(task.source, f"a region cannot be read: {error!r}")
        return sample

    def _name(self, rel: str, split: str | None) -> str:
        """The path below ``images/<split>/`` (as exported), else the base name without the upload prefix."""
        if rel in self.named:
            return self.named[rel]
        parts = rel.split("/")
        below = [index for index in range(len(parts) - 2) if parts[index] == "images" and parts[index + 1] in SPLITS]
        name = "/".join(parts[below[-1] + 2:]) if below else strip_ls_prefix(parts[-1])
        if (split, name) in self.names:  # two uploads of one name: keep them apart
            name = parts[-1] if (split, parts[-1]) not in self.names else rel
        self.names.add((split, name))
        self.named[rel] = name
        return name

    def _usable(self, region: _Region) -> bool:
        if region.kind not in KINDS:
            self.skipped[f"unsupported:{region.kind or '(no type)'}"] += 1
            return False
        if region.kind not in USABLE[self.task]:
            self.skipped[f"unusable:{region.kind}"] += 1
            return False
        return True

    def _classified(self, sample: Sample, regions: list[_Region]) -> Sample | None:
        labels = [region.label for region in regions if region.value.get("choices")]
        if not labels:
            self.skipped["no choice"] += 1
            return None
        sample.class_id = self.class_ids[labels[0]]
        return sample

    def _shapes(self, regions: list[_Region], size: Size) -> list[Annotation]:
        annotations = []
        for region in regions:
            points = outline(region, size)
            annotation = self._shape(self.class_ids[region.label], points) if points else None
            if annotation is None:
                self.skipped["empty"] += 1
            else:
                annotations.append(annotation)
        return annotations

    def _shape(self, class_id: int, points: list[tuple[float, float]]) -> Annotation | None:
        xs, ys = [x for x, _ in points], [y for _, y in points]
        box = box_from_corners(min(xs), min(ys), max(xs), max(ys), 1.0, 1.0)
        if box[2] <= 0 or box[3] <= 0:
            return None
        if self.task != "segment":
            return Annotation(class_id, box=box)
        polygon = tuple(clip_unit(value) for point in points for value in point)
        return Annotation(class_id, box=box, polygon=polygon)

    def _pose(self, regions: list[_Region], size: Size) -> list[Annotation]:
        boxes = [region for region in regions if region.kind == "rectanglelabels"]
        groups: dict[int, list[_Region]] = {index: [] for index in range(len(boxes))}
        ids = {box.id: index for index, box in enumerate(boxes) if box.id is not None}
        for region in regions:
            if region.kind != "keypointlabels":
                continue
            parent = ids.get(region.parent_id) if region.parent_id is not None else (0 if len(boxes) == 1 else None)
            if parent is None:
                self.skipped["orphan keypoint"] += 1
            else:
                groups[parent].append(region)
        annotations = []
        for index, box in enumerate(boxes):
            points = outline(box, size)
            annotation = self._shape(self.class_ids[box.label], points) if points else None
            if annotation is None:
                self.skipped["empty"] += 1
                continue
            annotation.keypoints = self._keypoints(groups[index])
            annotations.append(annotation)
        return annotations

    def _keypoints(self, regions: list[_Region]) -> tuple[float, ...]:
        count, dims = self.kpt_shape
        values = [0.0] * (count * dims)
        for region in regions:
            index = self.keypoint_ids[region.label]
            point = (clip_unit(float(region.value["x"]) / 100), clip_unit(float(region.value["y"]) / 100), 2.0)
            values[index * dims:(index + 1) * dims] = point[:dims]
        return tuple(values)

    def report(self, counts: Counter[str], tree: SourceTree) -> None:
        messages = {"several": "tasks have several annotations; the first one not cancelled was used",
                    "empty": "regions with no area were skipped", "no choice": "tasks have no choice and were skipped",
                    "orphan keypoint": "keypoints belong to no rectangle (no parentID and not exactly one rectangle "
                    "in the task) and were skipped", "unsupported": "regions of type {} are not supported and were "
                    "skipped", "unusable": "{} regions were skipped: a " + self.task + " dataset cannot use them"}
        for key, count in sorted((counts + self.skipped).items()):
            reason, _, kind = key.partition(":")
            self.problems.warn(f"{count} {messages[reason].format(kind)}")
        unnamed = sorted(set(tree.images()) - set(self.named))
        if unnamed:
            self.problems.warn(f"{len(unnamed)} images are named by no task and were ignored (e.g. {unnamed[0]})")


def _url_path(url: str) -> str:
    """The file a task's image URL names: ``/data/local-files/?d=<path>`` keeps it in the query."""
    parts = urlsplit(url)
    local = parse_qs(parts.query).get("d")
    return unquote(local[0] if local else parts.path)
