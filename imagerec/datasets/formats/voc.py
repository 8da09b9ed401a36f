"""Pascal VOC XML (as CVAT and LabelImg write it): boxes for detection.

One ``<annotation>`` XML per image, in ``Annotations/`` (VOC, CVAT) or next to the images (LabelImg). Each names
its image by ``filename`` (or ``path``), found with ``SourceTree.find_image``, else the image with the XML's stem
in the same folder or in the ``JPEGImages`` folder beside ``Annotations``. ``size`` gives the image size, else the
image header does. Each ``object`` is a ``name``, a ``bndbox`` (``xmin ymin xmax ymax`` in pixels: VOC counts
from 1, LabelImg from 0; both are read as pixels and clipped to the image) and ``difficult`` (0/1, kept).

Class names are the order of ``labels.txt`` (or ``classes.txt``) when there is one, else the sorted names the
objects use. Splits come from ``ImageSets/Main/{train,val,trainval,test}.txt`` (``trainval`` is ``train`` when
there is no ``train.txt``); without them the writer splits. Images no XML names are backgrounds. XML is parsed
with defusedxml, so entity expansion (billion laughs), external entities and DTDs are refused.

Export writes ``Annotations/<id>.xml``, ``JPEGImages/<id><ext>``, ``ImageSets/Main/<split>.txt`` and
``labels.txt``; ids are the image names without their suffix, prefixed with the split when two splits share one.
Coordinates are written with four decimals, so an export imports back as it was.
"""

from __future__ import annotations

import posixpath
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from dataclasses import dataclass
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeElementTree
from defusedxml import DefusedXmlException

from imagerec.datasets.formats.base import (
    Annotation,
    ExportSink,
    ExportSource,
    Imported,
    ImportOptions,
    Problems,
    Sample,
    SourceTree,
    box_from_corners,
)
from imagerec.datasets.validation import Metadata
from imagerec.errors import Unprocessable
from imagerec.pillow import pillow_open

XML_MAX_BYTES = 16 * 1024 * 1024
LIST_MAX_BYTES = 64 * 1024 * 1024
CLASS_LISTS = ("labels.txt", "classes.txt")
SPLIT_LISTS = ("train", "val", "trainval", "test")
DETECT_PEEK = 20  # XML files parsed to recognise the format; enough to skip a stray non-VOC one


@dataclass
class _Parsed:
    """One VOC XML: the image it names and its objects (pixel corners)."""

    rel: str
    image_rel: str | None
    filename: str  # as the XML names it: what messages call a missing image
    size: tuple[int, int] | None
    objects: list[tuple[str, tuple[float, float, float, float], bool]]


class VocImporter:
    def detect(self, tree: SourceTree, *, task: str) -> str | None:
        if task != "detect":
            return None
        for rel in _xml_files(tree)[:DETECT_PEEK]:
            root = _root_or_none(tree, rel)
            if root is not None and root.tag == "annotation":
                return f"Pascal VOC: {rel} is a VOC <annotation>"
        return None

    def read(self, tree: SourceTree, *, options: ImportOptions, problems: Problems) -> Imported:
        parsed = [entry for rel in _xml_files(tree) if (entry := _parse(tree, rel, problems)) is not None]
        if not parsed and not problems.errors:
            raise Unprocessable("no Pascal VOC <annotation> XML files were found")
        names = _class_names(tree, parsed, problems)
        splits = _splits(tree)
        samples = list(_annotated_samples(tree, parsed, names, splits, problems))
        samples += _backgrounds(tree, parsed, splits, problems)
        return Imported(metadata=Metadata(class_names=names), samples=samples)


IMPORTER = VocImporter()


# --- reading --------------------------------------------------------------------------------------------------


def _xml_files(tree: SourceTree) -> list[str]:
    # Annotations/ first: detection peeks at a few files, and a VOC export keeps all its XML there
    return sorted(tree.with_suffix(".xml"), key=lambda rel: ("Annotations/" not in f"/{rel}", rel))


def _root_or_none(tree: SourceTree, rel: str) -> Element | None:
    try:
        return SafeElementTree.fromstring(tree.read_text(rel, max_bytes=XML_MAX_BYTES))
    except (ValueError, ElementTree.ParseError, DefusedXmlException, UnicodeDecodeError):
        return None


def _parse(tree: SourceTree, rel: str, problems: Problems) -> _Parsed | None:
    """The XML's content; None (with an error for a broken file) when it is not a VOC annotation."""
    try:
        root = SafeElementTree.fromstring(tree.read_text(rel, max_bytes=XML_MAX_BYTES))
    except DefusedXmlException as error:
        problems.error(rel, f"XML with DTDs or entities are not accepted ({type(error).__name__})")
        return None
    except (ValueError, ElementTree.ParseError, UnicodeDecodeError) as error:
        problems.error(rel, f"not valid XML: {error}")
        return None
    if root.tag != "annotation":
        return None  # another tool's XML (a Label Studio config, CVAT's annotations.xml): not ours to judge
    objects = []
    for number, element in enumerate(root.iter("object"), start=1):
        try:
            objects.append(_object(element))
        except ValueError as error:
            problems.error(rel, f"object {number}: {error}")
    filename = (root.findtext("filename") or "").strip() or posixpath.basename(rel)
    return _Parsed(rel, _image_of(tree, rel, root), filename, _size(root), objects)


def _object(element: Element) -> tuple[str, tuple[float, float, float, float], bool]:
    name = (element.findtext("name") or "").strip()
    if not name:
        raise ValueError("has no <name>")
    bndbox = element.find("bndbox")
    if bndbox is None:
        raise ValueError(f"{name!r} has no <bndbox>")
    corners = []
    for key in ("xmin", "ymin", "xmax", "ymax"):
        text = (bndbox.findtext(key) or "").strip()
        try:
            corners.append(float(text))
        except ValueError:
            raise ValueError(f"{name!r} <{key}> is not a number: {text!r}") from None
    difficult = (element.findtext("difficult") or "0").strip() in ("1", "true", "True")
    return name, (corners[0], corners[1], corners[2], corners[3]), difficult


def _size(root: Element) -> tuple[int, int] | None:
    try:
        width, height = int(float(root.findtext("size/width") or 0)), int(float(root.findtext("size/height") or 0))
    except ValueError:
        return None
    return (width, height) if width > 0 and height > 0 else None


def _image_of(tree: SourceTree, xml_rel: str, root: Element) -> str | None:
    for named in (root.findtext("filename"), root.findtext("path")):
        if named and named.strip():
            found = tree.find_image(named.strip(), near=xml_rel)
            if found is not None:
                return found
    stem = posixpath.splitext(xml_rel)[0]
    candidates = {stem, _swap_folder(stem, "Annotations", "JPEGImages")}
    return next((rel for rel in sorted(tree.images()) if posixpath.splitext(rel)[0] in candidates), None)


def _swap_folder(rel: str, old: str, new: str) -> str:
    parts = rel.split("/")
    if old in parts[:-1]:
        index = len(parts) - 2 - parts[-2::-1].index(old)
        parts[index] = new
    return "/".join(parts)


def _class_names(tree: SourceTree, parsed: list[_Parsed], problems: Problems) -> list[str]:
    used = sorted({name for entry in parsed for name, _, _ in entry.objects})
    listed = sorted((rel for rel in tree.files if rel.rpartition("/")[2] in CLASS_LISTS), key=lambda r: r.count("/"))
    if not listed:
        return used
    lines = tree.read_text(listed[0], max_bytes=LIST_MAX_BYTES).splitlines()
    names = list(dict.fromkeys(line.strip() for line in lines if line.strip()))
    extra = [name for name in used if name not in names]
    if extra:
        problems.warn(f"{len(extra)} class names used by objects are not in {listed[0]} and were added after its "
                      f"names: {', '.join(extra[:10])}")
    return names + extra


def _splits(tree: SourceTree) -> dict[str, str]:
    """Image id (name without suffix) → split, from ImageSets/Main."""
    lists = {rel.rpartition("/")[2][:-4]: rel for rel in tree.with_suffix(".txt")
             if rel.rpartition("/")[0].endswith("ImageSets/Main") and rel.rpartition("/")[2][:-4] in SPLIT_LISTS}
    order = [("test", "test"), ("val", "val"), ("train", "train")]
    if "train" not in lists:
        order.append(("trainval", "train"))  # with a train.txt, trainval only repeats train + val
    splits: dict[str, str] = {}
    for list_name, split in order:
        if list_name in lists:
            for line in tree.read_text(lists[list_name], max_bytes=LIST_MAX_BYTES).splitlines():
                if line.split():
                    splits.setdefault(line.split()[0], split)
    return splits


def _id_of(rel: str) -> str:
    """An image's or XML's VOC id: its path below Annotations/ or JPEGImages/ without the suffix, else its stem."""
    stem = posixpath.splitext(rel)[0]
    for folder in ("Annotations/", "JPEGImages/"):
        if folder in f"/{stem}":
            return f"/{stem}".rpartition(f"/{folder}")[2]
    return stem.rpartition("/")[2]


def _name_of(image_rel: str) -> str:
    return image_rel.rpartition("JPEGImages/")[2] if "JPEGImages/" in f"/{image_rel}" else image_rel


def _annotated_samples(tree: SourceTree, parsed: list[_Parsed], names: list[str], splits: dict[str, str],
                       problems: Problems) -> Iterator[Sample]:
    class_ids = {name: index for index, name in enumerate(names)}
    empty = 0
    for entry in parsed:
        size = entry.size or (_header_size(tree, entry.image_rel, problems) if entry.image_rel else None)
        annotations = []
        for name, (x1, y1, x2, y2), difficult in entry.objects if size else []:
            box = box_from_corners(x1, y1, x2, y2, *size)
            if box[2] <= 0 or box[3] <= 0:
                empty += 1
                continue
            annotations.append(Annotation(class_ids[name], box=box, difficult=difficult))
        image_rel = entry.image_rel
        name = _name_of(image_rel) if image_rel else entry.filename
        # image None: the writer counts and reports the XML files whose image the upload lacks
        yield Sample(name=name, split=splits.get(_id_of(entry.rel)), image=tree.get(image_rel) if image_rel else None,
                     annotations=annotations, source=entry.rel)
    if empty:
        problems.warn(f"{empty} boxes with no area (after clipping to the image) were skipped")


def _header_size(tree: SourceTree, image_rel: str, problems: Problems) -> tuple[int, int] | None:
    try:
        with pillow_open()(tree.files[image_rel]) as image:
            return image.size
    except Exception as error:  # any unreadable header is the same problem to the user
        problems.error(image_rel, f"the image size is not in the XML and the image cannot be read: {error}")
        return None


def _backgrounds(tree: SourceTree, parsed: list[_Parsed], splits: dict[str, str], problems: Problems
                 ) -> list[Sample]:
    named = {entry.image_rel for entry in parsed}
    loose = sorted(rel for rel in tree.images() if rel not in named)
    if loose:
        problems.warn(f"{len(loose)} images have no VOC XML and were added as backgrounds (e.g. {loose[0]})")
    return [Sample(name=_name_of(rel), split=splits.get(_id_of(rel)), image=tree.get(rel), source=rel)
            for rel in loose]


# --- export ---------------------------------------------------------------------------------------------------


def export(source: ExportSource, sink: ExportSink) -> None:
    names = source.metadata.class_names
    ids_by_split: dict[str, list[str]] = {}
    used: set[str] = set()
    for sample in source.samples():
        split = sample.split or "train"
        image_id = _unique_id(posixpath.splitext(sample.name)[0], split=split, used=used)
        suffix = posixpath.splitext(sample.name)[1]
        with pillow_open()(sample.image) as image:
            width, height = image.size
        xml = _annotation_xml(sample, names=names, filename=f"{image_id}{suffix}", width=width, height=height)
        sink.add_bytes(f"Annotations/{image_id}.xml", xml)
        sink.add_file(f"JPEGImages/{image_id}{suffix}", sample.image)
        ids_by_split.setdefault(split, []).append(image_id)
    for split, ids in ids_by_split.items():
        sink.add_bytes(f"ImageSets/Main/{split}.txt", ("\n".join(ids) + "\n").encode())
    sink.add_bytes("labels.txt", ("\n".join(names) + "\n").encode())


def _unique_id(stem: str, *, split: str, used: set[str]) -> str:
    """The stem, or ``<split>_<stem>`` (then a counter) when another split already has it: VOC ids are global."""
    candidate, counter = stem, 1
    while candidate in used:
        candidate = f"{split}_{stem}" if counter == 1 else f"{split}_{stem}_{counter}"
        counter += 1
    used.add(candidate)
    return candidate


def _annotation_xml(sample: Sample, *, names: list[str], filename: str, width: int, height: int) -> bytes:
    root = Element("annotation")
    _child(root, "folder", "JPEGImages")
    _child(root, "filename", posixpath.basename(filename))
    size = _child(root, "size")
    for key, value in (("width", width), ("height", height), ("depth", 3)):
        _child(size, key, str(value))
    _child(root, "segmented", "0")
    for annotation in sample.annotations:
        if annotation.box is not None:
            _object_element(root, annotation, name=names[annotation.class_id], width=width, height=height)
    ElementTree.indent(root)
    return ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)


def _object_element(root: Element, annotation: Annotation, *, name: str, width: int, height: int) -> None:
    element = _child(root, "object")
    _child(element, "name", name)
    _child(element, "pose", "Unspecified")
    _child(element, "truncated", "0")
    _child(element, "difficult", "1" if annotation.difficult else "0")
    cx, cy, w, h = annotation.box
    bndbox = _child(element, "bndbox")
    corners = ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)
    for key, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
        _child(bndbox, key, f"{value:.4f}".rstrip("0").rstrip("."))


def _child(parent: Element, tag: str, text: str | None = None) -> Element:
    element = ElementTree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element

