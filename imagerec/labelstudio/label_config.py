"""Reads a Label Studio labeling config (the project's XML) into what the backend needs to predict.

Label Studio's conventions (label-studio-ml-backend, ``examples/yolo``):

- a *control* tag (``RectangleLabels``, ``PolygonLabels``, ``KeyPointLabels``, ``BrushLabels``, ``Choices``) names
  the regions it produces (``name`` → a region's ``from_name``) and the object tag they are drawn on (``toName`` →
  ``to_name``); its ``<Label value=…>`` / ``<Choice value=…>`` children, nested in ``<View>``s or not, are the
  labels a person can pick;
- a label maps to model classes by name (case-insensitive) or through ``predicted_values="a,b"``; a keypoint label
  to a keypoint of the model's skeleton through ``model_index``;
- ``model_score_threshold`` (older configs: ``score_threshold``) on the control drops weaker predictions,
  ``model_point_threshold`` on KeyPointLabels weaker keypoints, and ``model_skip="true"`` leaves the tag alone;
- the *object* tag ``<Image name="image" value="$image"/>`` says which key of a task's ``data`` holds the image.

The XML is parsed with ``defusedxml``: entity expansion and external references are refused (it arrives from
the network). Tag names are matched case-insensitively, as Label Studio does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from xml.etree.ElementTree import Element, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from imagerec.errors import BadRequest, Unprocessable
from imagerec.vision import VisionTask

MAX_CONFIG_CHARS = 1_000_000  # Label Studio's own configs are a few KB; this bounds parsing work


class ControlKind(StrEnum):
    rectangle = "rectanglelabels"
    polygon = "polygonlabels"
    keypoint = "keypointlabels"
    brush = "brushlabels"
    choices = "choices"


# The task whose model serves a config, most specific first: a pose model also gives boxes, a segmentation
# model boxes and polygons; a pose config often carries a RectangleLabels for the keypoints' parent boxes.
TASK_FOR_KIND: dict[ControlKind, VisionTask] = {
    ControlKind.keypoint: VisionTask.pose,
    ControlKind.polygon: VisionTask.segment,
    ControlKind.brush: VisionTask.segment,
    ControlKind.rectangle: VisionTask.detect,
    ControlKind.choices: VisionTask.classify,
}
TASK_PREFERENCE = [VisionTask.pose, VisionTask.segment, VisionTask.detect, VisionTask.classify]
LABEL_TAGS = {"label", "choice"}
TRUE_WORDS = {"1", "true", "yes"}


@dataclass(frozen=True)
class LabelDef:
    value: str
    predicted_values: tuple[str, ...] = ()
    model_index: int | None = None


@dataclass(frozen=True)
class ControlTag:
    kind: ControlKind
    name: str
    to_name: str  # the Image object tag it labels
    labels: tuple[LabelDef, ...]
    score_threshold: float | None
    point_threshold: float | None = None  # KeyPointLabels only


@dataclass(frozen=True)
class ImageTag:
    name: str
    data_key: str  # the key of a task's ``data`` that holds the image reference


@dataclass(frozen=True)
class LabelConfig:
    controls: tuple[ControlTag, ...]
    images: dict[str, ImageTag]

    @property
    def task(self) -> VisionTask:
        """The vision task whose model serves this config; ``parse_label_config`` ensures there is a control."""
        tasks = {TASK_FOR_KIND[control.kind] for control in self.controls}
        return next(task for task in TASK_PREFERENCE if task in tasks)

    def controls_for(self, task: VisionTask) -> list[ControlTag]:
        """The controls a model of ``task`` can fill (a segmentation model also fills RectangleLabels …)."""
        return [c for c in self.controls if c.kind in SERVED_KINDS[task]]

    def image_for(self, control: ControlTag) -> ImageTag:
        return self.images[control.to_name]


SERVED_KINDS: dict[VisionTask, set[ControlKind]] = {
    VisionTask.detect: {ControlKind.rectangle},
    VisionTask.segment: {ControlKind.rectangle, ControlKind.polygon, ControlKind.brush},
    VisionTask.pose: {ControlKind.rectangle, ControlKind.keypoint},
    VisionTask.classify: {ControlKind.choices},
}


def parse_label_config(xml: str | None) -> LabelConfig:
    """Parse ``xml``; 400 when it is missing or not well-formed, 422 when it has no usable control."""
    root = _parse_xml(xml)
    images = _image_tags(root)
    controls = tuple(c for element in root.iter() if (c := _control(element, images)) is not None)
    if not controls:
        raise Unprocessable(
            "the label config has no control tag imagerec can predict for an <Image>: use RectangleLabels, "
            "PolygonLabels, BrushLabels, KeyPointLabels or Choices with toName naming an <Image> tag "
            "whose value is a task data key such as $image"
        )
    return LabelConfig(controls=controls, images=images)


def with_labels_renamed(xml: str, renames: dict[str, dict[str, str]]) -> str:
    """The config with each control's labels renamed (``renames``: control name -> {label: new name}) and their
    ``predicted_values`` dropped: the config of data whose labels were turned into the model's class names."""
    root = _parse_xml(xml)
    for element in root.iter():
        names = renames.get(element.get("name", "")) if _tag(element) in set(ControlKind) else None
        for label in element if names else ():
            if _tag(label) in LABEL_TAGS and label.get("value") in names:
                label.set("value", names[label.get("value")])
                label.attrib.pop("predicted_values", None)
    return tostring(root, encoding="unicode")


def _parse_xml(xml: str | None) -> Element:
    if not xml or not xml.strip():
        raise BadRequest("the request carries no label config (Label Studio sends it as 'label_config' / 'schema')")
    if len(xml) > MAX_CONFIG_CHARS:
        raise BadRequest(f"the label config is longer than {MAX_CONFIG_CHARS} characters")
    try:
        return fromstring(xml, forbid_dtd=True)
    except (ParseError, DefusedXmlException) as error:
        raise BadRequest(f"the label config is not valid XML: {error}") from None


def _image_tags(root: Element) -> dict[str, ImageTag]:
    images = {}
    for element in root.iter():
        if _tag(element) != "image" or not element.get("name"):
            continue
        value = (element.get("value") or "").strip()
        if value.startswith("$") and len(value) > 1:
            images[element.get("name")] = ImageTag(name=element.get("name"), data_key=value[1:])
    return images


def _control(element: Element, images: dict[str, ImageTag]) -> ControlTag | None:
    """The control tag ``element`` is, if it is one we fill: a known kind, on an <Image>, not skipped."""
    try:
        kind = ControlKind(_tag(element))
    except ValueError:
        return None
    name = element.get("name")
    to_name = next((n.strip() for n in (element.get("toName") or "").split(",") if n.strip() in images), None)
    if not name or to_name is None or _flag(element, "model_skip"):
        return None
    return ControlTag(
        kind=kind,
        name=name,
        to_name=to_name,
        labels=tuple(_label(child) for child in element.iter() if _tag(child) in LABEL_TAGS and child.get("value")),
        score_threshold=_fraction(element, "model_score_threshold", "score_threshold"),
        point_threshold=_fraction(element, "model_point_threshold") if kind is ControlKind.keypoint else None,
    )


def _label(element: Element) -> LabelDef:
    predicted = tuple(v.strip() for v in (element.get("predicted_values") or "").split(",") if v.strip())
    index = (element.get("model_index") or "").strip()
    if index and not index.isdigit():
        raise BadRequest(f"<Label value={element.get('value')!r}>: model_index must be a whole number, got {index!r}")
    return LabelDef(value=element.get("value"), predicted_values=predicted, model_index=int(index) if index else None)


def _fraction(element: Element, *attributes: str) -> float | None:
    for attribute in attributes:
        raw = element.get(attribute)
        if raw is None or not raw.strip():
            continue
        try:
            value = float(raw)
        except ValueError:
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise BadRequest(f"<{element.tag} name={element.get('name')!r}>: {attribute} must be between 0 and 1, "
                             f"got {raw!r}")
        return value
    return None


def _flag(element: Element, attribute: str) -> bool:
    return (element.get(attribute) or "").strip().lower() in TRUE_WORDS


def _tag(element: Element) -> str:
    return element.tag.lower() if isinstance(element.tag, str) else ""


# -- mapping labels to the model ----------------------------------------------------------------------------
def label_map(control: ControlTag, class_names: list[str]) -> dict[str, str]:
    """Model class name → the Label Studio label it becomes; classes left out are not predicted.

    A label's ``predicted_values`` name the classes it stands for; a label without a matching one stands for
    the class of its own name. Both compare case-insensitively. For KeyPointLabels the labels name points, not
    classes: their ``predicted_values`` say which classes' skeletons to keep (all when none is given), and a
    class keeps its own name (it labels the hidden parent box).
    """
    by_folded = {name.casefold(): name for name in class_names}
    if control.kind is ControlKind.keypoint:
        wanted = {by_folded[v.casefold()] for label in control.labels for v in label.predicted_values
                  if v.casefold() in by_folded}
        return {name: name for name in class_names if not wanted or name in wanted}
    mapping: dict[str, str] = {}
    for label in control.labels:
        matched = [by_folded[v.casefold()] for v in label.predicted_values if v.casefold() in by_folded]
        if not matched and label.value.casefold() in by_folded:
            matched = [by_folded[label.value.casefold()]]
        for class_name in matched:
            mapping.setdefault(class_name, label.value)
    return mapping


def keypoint_labels(control: ControlTag) -> dict[int, str]:
    """Keypoint index → label, from ``model_index``; labels in document order when none has one."""
    if any(label.model_index is not None for label in control.labels):
        return {label.model_index: label.value for label in control.labels if label.model_index is not None}
    return dict(enumerate(label.value for label in control.labels))
