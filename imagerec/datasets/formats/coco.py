"""COCO JSON (as pycocotools, CVAT, Label Studio and Roboflow write it): boxes, polygons and RLE masks, keypoints.

Files: every ``.json`` whose top level has ``images`` and ``annotations`` (detection reads only a file's first
64 KB). A file's split is the word its name holds (``train``; ``val``, ``valid``, ``validation``; ``test``), else
its folder's name when that is a split (Roboflow's ``valid/_annotations.coco.json``), else none: the writer splits
(CVAT's ``instances_default.json``). Files are streamed with ijson in three passes (categories, images,
annotations), so only a compact record per image is ever held, whatever the file's size.

Classes are the category names in order of first appearance (by id within a file, files in path order): one
name is one class, across files and within one. Images: ``file_name`` is looked for in the standard layouts beside
the file (``images/<tag>/``, ``<tag>/``, ``images/<split>/``, ``images/`` next to ``annotations/``, ``<tag>``
being the name after ``instances_``, e.g. ``train2017``), then with ``SourceTree.find_image`` (from the file's
folder, from the root, by unique base name). Sizes come from the entry, else the image header. A listed image the
source lacks becomes a sample without an image, which the writer counts and skips (and a new version can relabel
the image it already holds); images no file lists are ignored, with a warning. A sample is named by the base name
of its ``file_name``, or by the whole ``file_name`` path when two images of a split share a base name.

Annotations: ``iscrowd`` ones are skipped (COCO's evaluation ignores crowd regions; Ultralytics' converter drops
them). ``bbox`` is ``[x, y, w, h]`` in pixels, clipped to the image; one with no area is skipped. Segment: a
polygon of several parts keeps its largest part (a YOLO label holds one polygon per object; a warning counts
them); an RLE mask (compressed or list counts, of the image's size) is decoded with pycocotools and the outline of
its largest part kept. Pose: ``keypoints`` ``[x, y, v] * K`` are normalised with v kept (v=0 is ``0 0 0``); K is
the length of the categories' ``keypoints`` names (or the request's kpt_shape); flip_idx is the request's, else
the category's ``flip_idx`` (an extra key ``coco_export`` writes; COCO readers ignore it), else it pairs names
that differ by left/right (``left_eye`` ↔ ``right_eye``); ``skeleton`` is not used. An ``image_id`` or
``category_id`` that names nothing is an error (the first few per file, then a count).
"""

from __future__ import annotations

import io
import posixpath
from array import array
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import ijson

from imagerec.datasets.formats import coco_shapes as shapes
from imagerec.datasets.formats.base import (
    Annotation,
    Imported,
    ImportOptions,
    Problems,
    Sample,
    SourceTree,
    box_from_corners,
)
from imagerec.datasets.formats.coco_export import export
from imagerec.datasets.validation import Metadata
from imagerec.errors import Unprocessable
from imagerec.pillow import pillow_open

__all__ = ["IMPORTER", "export"]

SNIFF_BYTES = 64 * 1024
DETECT_PEEK = 20  # JSON files sniffed to recognise the format
ERRORS_PER_KIND = 20  # per file: a file of 10 000 dangling ids gives a readable report, not 10 000 lines
FOLDER_SPLITS = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
WARNINGS = {
    "crowd": "crowd annotations (iscrowd 1) were skipped: COCO's evaluation ignores crowd regions",
    "no_box": "annotations without a usable bbox (x, y, w, h with w and h > 0) were skipped",
    "empty": "boxes with no area (after clipping to the image) were skipped",
    "clipped": "objects reach outside their image and were clipped to it",
    "multipart": "polygons have several parts; the largest part of each was kept",
    "no_segment": "annotations without a usable polygon or RLE mask were skipped",
    "bad_rle": "RLE masks that do not decode to a mask of their image's size were skipped",
    "bad_keypoints": "annotations whose keypoints are not K (x, y, v) triples were skipped",
}


@dataclass(slots=True)
class _Image:
    rel: str | None  # the image in the source
    file_name: str
    split: str | None
    source: str
    size: tuple[int, int] | None
    # per object: class_id, polygon length, keypoints length, box (4), polygon, keypoints; normalised. One flat
    # array of doubles an image: 8 bytes a value instead of a Python float and tuple each (a 200k-box file
    # then holds ~11 MB of objects, not ~60 MB)
    objects: array = field(default_factory=lambda: array("d"))


class CocoImporter:
    def detect(self, tree: SourceTree, *, task: str) -> str | None:
        if task not in ("detect", "segment", "pose"):
            return None
        for rel in _json_files(tree)[:DETECT_PEEK]:
            keys = _sniff(tree, rel)
            if keys is not None:
                found = [key for key in ("images", "annotations", "categories") if key in keys]
                listed = ", ".join(found[:-1]) + f" and {found[-1]}" if len(found) > 1 else found[0]
                return f"COCO: {rel} has {listed}"
        return None

    def read(self, tree: SourceTree, *, options: ImportOptions, problems: Problems) -> Imported:
        files = [rel for rel in _json_files(tree) if _sniff(tree, rel) is not None]
        if not files:
            raise Unprocessable("no COCO annotation file (a .json with 'images' and 'annotations') was found")
        reader = _Reader(tree, options, problems)
        reader.read(files)
        return Imported(metadata=reader.metadata, samples=reader.samples())


IMPORTER = CocoImporter()


# --- files ----------------------------------------------------------------------------------------------------


def _json_files(tree: SourceTree) -> list[str]:
    # annotations/ first: detection sniffs a few files, and most COCO exports keep theirs there
    return sorted(tree.with_suffix(".json"), key=lambda rel: ("annotations/" not in f"/{rel}", rel))


def _sniff(tree: SourceTree, rel: str) -> set[str] | None:
    """The top-level keys seen in the file's head when it looks like COCO, else None. A huge file's
    ``annotations`` key lies past the head: an ``images`` list of entries with ``file_name`` is then enough."""
    with open(tree.files[rel], "rb") as handle:
        head = handle.read(SNIFF_BYTES)
    keys: set[str] = set()
    named_images = complete = False
    try:
        for number, (prefix, event, value) in enumerate(ijson.parse(io.BytesIO(head))):
            if number == 0 and event != "start_map":
                return None
            if prefix == "" and event == "map_key":
                keys.add(value)
            named_images |= prefix == "images.item" and event == "map_key" and value == "file_name"
        complete = True
    except (ijson.JSONError, UnicodeDecodeError):
        pass
    if {"images", "annotations"} <= keys or (named_images and not complete):
        return keys
    return None


def _items(tree: SourceTree, rel: str, prefix: str) -> Iterator[object]:
    with open(tree.files[rel], "rb") as handle:
        yield from ijson.items(handle, prefix, use_float=True)


def _split_of(rel: str) -> str | None:
    folder, _, name = rel.rpartition("/")
    name = name.lower()
    for word in ("train", "val", "test"):  # "valid", "validation" hold "val"
        if word in name:
            return word
    return FOLDER_SPLITS.get(folder.rpartition("/")[2].lower())


def _layout_folders(rel: str, split: str | None) -> list[str]:
    """Where the standard layouts keep the images of the annotation file ``rel``."""
    folder, _, name = rel.rpartition("/")
    base = folder.rpartition("/")[0] if folder.rpartition("/")[2] == "annotations" else folder
    tag = posixpath.splitext(name)[0].removeprefix("instances_")
    tags = [tag] + ([split] if split and split != tag else [])
    folders = [f"{base}/images/{t}" for t in tags] + [f"{base}/{t}" for t in tags] + [f"{base}/images"]
    return list(dict.fromkeys(f.lstrip("/") for f in folders))


# --- reading --------------------------------------------------------------------------------------------------


class _Reader:
    """Reads the files into ``_Image`` records, counting what it skips for one warning per kind."""

    def __init__(self, tree: SourceTree, options: ImportOptions, problems: Problems):
        self.tree, self.options, self.problems = tree, options, problems
        self.task = options.task
        self.class_ids: dict[str, int] = {}
        self.category_maps: dict[str, dict[object, int]] = {}
        self.keypoint_names: list[str] = []
        self.category_flip: list[int] | None = None
        self.kpt_shape: list[int] | None = None
        self.images: list[_Image] = []
        self.skipped: Counter[str] = Counter()
        self.examples: dict[str, str] = {}
        self.errors: Counter[tuple[str, str]] = Counter()

    def read(self, files: list[str]) -> None:
        # every file's categories first: class ids follow first appearance across files
        readable = [rel for rel in files if self._guarded(rel, self._categories)]
        if self.task == "pose":
            self.kpt_shape = self._resolve_kpt_shape(files[0])
        for rel in readable:
            self._guarded(rel, self._images_and_objects)
        self._report()

    def _guarded(self, rel: str, step) -> bool:
        try:
            step(rel)
        except ijson.JSONError as error:
            self.problems.error(rel, f"not valid JSON: {error}")
            return False
        return True

    def _error(self, rel: str, kind: str, message: str) -> None:
        self.errors[(rel, kind)] += 1
        if self.errors[(rel, kind)] <= ERRORS_PER_KIND:
            self.problems.error(rel, message)

    def _skip(self, kind: str, where: str) -> None:
        self.skipped[kind] += 1
        self.examples.setdefault(kind, where)

    # categories

    def _categories(self, rel: str) -> None:
        entries = []
        for number, entry in enumerate(_items(self.tree, rel, "categories.item")):
            if isinstance(entry, dict) and shapes.scalar(entry.get("id")):
                entries.append(entry)
            else:
                self._error(rel, "category", f"categories[{number}] needs an 'id'")
        mapping = self.category_maps.setdefault(rel, {})
        for entry in sorted(entries, key=lambda entry: shapes.id_order(entry["id"])):
            name = str(entry.get("name") or "").strip()
            if not name:
                self._error(rel, "category", f"category {entry['id']!r} has no name")
                continue
            mapping[entry["id"]] = self.class_ids.setdefault(name, len(self.class_ids))
            if self.task == "pose" and isinstance(entry.get("keypoints"), list) and entry["keypoints"]:
                self._category_keypoints(rel, name, entry)

    def _category_keypoints(self, rel: str, name: str, entry: dict) -> None:
        names = [str(keypoint) for keypoint in entry["keypoints"]]
        if not self.keypoint_names:
            self.keypoint_names = names
        elif len(names) != len(self.keypoint_names):
            self._error(rel, "keypoints", f"category {name!r} has {len(names)} keypoints, another has "
                                          f"{len(self.keypoint_names)}: all must have the same")
        flip = entry.get("flip_idx")
        if self.category_flip is None and isinstance(flip, list) and all(type(i) is int for i in flip) and sorted(
                flip) == list(range(len(names))):
            self.category_flip = flip

    def _resolve_kpt_shape(self, rel: str) -> list[int] | None:
        given, count = self.options.kpt_shape, len(self.keypoint_names)
        if given and count and given[0] != count:
            self.problems.error(rel, f"the categories name {count} keypoints but kpt_shape is {given}")
            return None
        if count:
            return [count, given[1] if given else 3]
        if given:
            return list(given)
        self.problems.error(rel, "a pose dataset needs categories with 'keypoints' names (or 'kpt_shape' in the "
                                 "request)")
        return None

    @property
    def metadata(self) -> Metadata:
        names = list(self.class_ids)
        if self.task != "pose":
            return Metadata(class_names=names)
        flip = self.options.flip_idx or self.category_flip or shapes.flip_from_names(self.keypoint_names)
        return Metadata(class_names=names, kpt_shape=self.kpt_shape, flip_idx=flip)

    # images and annotations

    def _images_and_objects(self, rel: str) -> None:
        split = _split_of(rel)
        images = self._images(rel, split)
        for number, entry in enumerate(_items(self.tree, rel, "annotations.item")):
            self._annotation(rel, number, entry, images)
        self.images.extend(images.values())
        for (file, kind), count in self.errors.items():
            if file == rel and count > ERRORS_PER_KIND:
                self.problems.error(rel, f"… and {count - ERRORS_PER_KIND} more like the above ({kind})")

    def _images(self, rel: str, split: str | None) -> dict[object, _Image]:
        images: dict[object, _Image] = {}
        folders = _layout_folders(rel, split)
        for number, entry in enumerate(_items(self.tree, rel, "images.item")):
            if not isinstance(entry, dict) or not shapes.scalar(entry.get("id")) or not isinstance(
                    entry.get("file_name"), str) or not entry["file_name"].strip():
                self._error(rel, "image", f"images[{number}] needs an 'id' and a 'file_name'")
                continue
            file_name = entry["file_name"].strip().replace("\\", "/")
            found = self._find(file_name, rel, folders)
            source = f"{rel}: {file_name}"
            images[entry["id"]] = _Image(found, file_name, split, source, self._size(entry, found))
        return images

    def _find(self, file_name: str, rel: str, folders: list[str]) -> str | None:
        for folder in folders:  # before base names: an export's splits may repeat a name
            candidate = posixpath.normpath(f"{folder}/{file_name}").lstrip("/")
            if candidate in self.tree.files:
                return candidate
        return self.tree.find_image(file_name, near=rel)

    def _size(self, entry: dict, found: str | None) -> tuple[int, int] | None:
        width, height = entry.get("width"), entry.get("height")
        if isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0:
            return int(width), int(height)
        if found is None:
            return None  # no image and no size: the writer skips the sample anyway
        try:
            with pillow_open()(self.tree.files[found]) as image:
                return image.size
        except Exception as error:  # any unreadable header is the same problem to the user
            self.problems.error(found, f"the image size is not in the JSON and the image cannot be read: {error}")
            return None

    def _annotation(self, rel: str, number: int, entry: object, images: dict[object, _Image]) -> None:
        if not isinstance(entry, dict):
            self._error(rel, "annotation", f"annotations[{number}] is not an object")
            return
        label = f"annotation {entry.get('id', f'#{number}')!r}"
        image = images.get(entry.get("image_id")) if shapes.scalar(entry.get("image_id")) else None
        class_id = self.category_maps.get(rel, {}).get(entry.get("category_id")) if shapes.scalar(
            entry.get("category_id")) else None
        if image is None:
            self._error(rel, "image_id", f"{label}: image_id {entry.get('image_id')!r} is not in 'images'")
        if class_id is None:
            self._error(rel, "category_id", f"{label}: category_id {entry.get('category_id')!r} is not in "
                                            "'categories'")
        if image is None or class_id is None or image.size is None:
            return
        if entry.get("iscrowd"):
            self._skip("crowd", f"{rel} {label}")
            return
        converted = self._object(entry, class_id, image.size, f"{rel} {label}")
        if converted is not None:
            class_id, box, polygon, keypoints = converted
            image.objects.extend((class_id, len(polygon), len(keypoints), *box, *polygon, *keypoints))

    def _object(self, entry: dict, class_id: int, size: tuple[int, int], where: str) -> tuple | None:
        width, height = size
        corners, polygon, keypoints = shapes.bbox_corners(entry.get("bbox")), (), ()
        points: shapes.Points = []
        if self.task == "segment":
            points = self._segmentation(entry.get("segmentation"), size, where)
            if not points:
                return None
            polygon = shapes.normalised(points, width=width, height=height)
            corners = corners or shapes.extent(points)
        if corners is None:
            self._skip("no_box", where)
            return None
        if self.task == "pose" and self.kpt_shape is not None:
            keypoints = shapes.keypoints(entry.get("keypoints"), kpt_shape=self.kpt_shape, width=width,
                                         height=height)
            if keypoints is None:
                self._skip("bad_keypoints", where)
                return None
            points = shapes.labelled_points(entry.get("keypoints"))
        box = box_from_corners(*corners, width, height)
        if box[2] <= 0 or box[3] <= 0:
            self._skip("empty", where)
            return None
        if shapes.outside([corners[:2], corners[2:], *points], width=width, height=height):
            self._skip("clipped", where)
        return class_id, box, polygon, keypoints

    def _segmentation(self, raw: object, size: tuple[int, int], where: str) -> shapes.Points:
        if isinstance(raw, dict):
            outline = shapes.rle_outline(raw, width=size[0], height=size[1])
            if outline is None:
                self._skip("bad_rle", where)
            return outline or []
        parts = shapes.polygon_parts(raw)
        if not parts:
            self._skip("no_segment", where)
            return []
        if len(parts) > 1:
            self._skip("multipart", where)
        return shapes.largest(parts)

    # samples

    def _report(self) -> None:
        for kind, count in self.skipped.items():
            self.problems.warn(f"{count} {WARNINGS[kind]} (e.g. {self.examples[kind]})")
        listed = {image.rel for image in self.images}
        ignored = sorted(rel for rel in self.tree.images() if rel not in listed)
        if ignored:
            self.problems.warn(f"{len(ignored)} images are in no COCO annotation file and were ignored "
                               f"(e.g. {ignored[0]})")

    def samples(self) -> Iterator[Sample]:
        bases = Counter((image.split, posixpath.basename(image.file_name)) for image in self.images)
        for image in self.images:
            base = posixpath.basename(image.file_name)
            name = base if bases[(image.split, base)] == 1 else _clean_path(image.file_name)
            annotations = list(_annotations(image.objects))
            image.objects = array("d")  # handed over: the writer has it now
            yield Sample(name=name, split=image.split, image=self.tree.get(image.rel) if image.rel else None,
                         annotations=annotations, source=image.source)


# --- values ---------------------------------------------------------------------------------------------------


def _annotations(values: array) -> Iterator[Annotation]:
    """The objects of ``_Image.objects`` back as annotations."""
    index = 0
    while index < len(values):
        class_id, polygon_length, keypoints_length = (int(value) for value in values[index:index + 3])
        box_start = index + 3
        polygon_start = box_start + 4
        keypoints_start = polygon_start + polygon_length
        index = keypoints_start + keypoints_length
        yield Annotation(class_id, box=tuple(values[box_start:polygon_start]),
                         polygon=tuple(values[polygon_start:keypoints_start]),
                         keypoints=tuple(values[keypoints_start:index]))


def _clean_path(file_name: str) -> str:
    return "/".join(part for part in file_name.split("/") if part not in ("", ".", ".."))
