"""Label configs as Label Studio projects hold them (examples from label-studio-ml-backend's YOLO README)."""

from __future__ import annotations

import pytest

from imagerec.errors import BadRequest, Unprocessable
from imagerec.labelstudio.label_config import (
    ControlKind,
    keypoint_labels,
    label_map,
    parse_label_config,
)

RECTANGLES = """
<View>
  <Image name="image" value="$image"/>
  <RectangleLabels name="label" toName="image" model_score_threshold="0.4" opacity="0.1">
    <Label value="Box" background="red" predicted_values="square"/>
    <Label value="Circle" background="blue"/>
    <Label value="Star"/>
  </RectangleLabels>
</View>"""

KEYPOINTS = """
<View>
  <RectangleLabels name="kp_bbox" toName="img" model_skip="true"><Label value="triangle"/></RectangleLabels>
  <KeyPointLabels name="kp" toName="img" model_score_threshold="0.3" model_point_threshold="0.2">
    <Label value="top" predicted_values="triangle" model_index="0"/>
    <View>
      <Label value="left" predicted_values="triangle" model_index="1"/>
      <Label value="right" predicted_values="triangle" model_index="2"/>
    </View>
  </KeyPointLabels>
  <Image name="img" value="$photo"/>
</View>"""

CHOICES = """
<View>
  <Image name="image" value="$image"/>
  <Choices name="choice" toName="image" choice="single">
    <Choice value="Round" predicted_values="circle"/>
    <Choice value="Square"/>
  </Choices>
  <Text name="caption" value="$text"/>
  <Choices name="sentiment" toName="caption"><Choice value="good"/></Choices>
</View>"""


def test_rectangle_config_names_regions_thresholds_and_the_detect_task() -> None:
    config = parse_label_config(RECTANGLES)
    [control] = config.controls
    assert (control.kind, control.name, control.to_name, control.score_threshold) == (
        ControlKind.rectangle, "label", "image", 0.4)
    assert config.image_for(control).data_key == "image"
    assert config.task == "detect"
    # predicted_values wins; otherwise the label's own name, case-insensitively; "Star" matches no class
    assert label_map(control, ["square", "circle", "triangle"]) == {"square": "Box", "circle": "Circle"}


def test_keypoint_config_skips_model_skip_tags_and_maps_points_by_model_index() -> None:
    config = parse_label_config(KEYPOINTS)
    [control] = config.controls  # the RectangleLabels has model_skip="true"
    assert control.kind is ControlKind.keypoint and config.task == "pose"
    assert (control.score_threshold, control.point_threshold) == (0.3, 0.2)
    assert config.image_for(control).data_key == "photo"
    assert keypoint_labels(control) == {0: "top", 1: "left", 2: "right"}
    assert label_map(control, ["triangle", "square"]) == {"triangle": "triangle"}


def test_choices_on_an_image_mean_classify_and_choices_on_text_are_ignored() -> None:
    config = parse_label_config(CHOICES)
    [control] = config.controls
    assert (control.kind, control.name, config.task) == (ControlKind.choices, "choice", "classify")
    assert label_map(control, ["circle", "square", "triangle"]) == {"circle": "Round", "square": "Square"}


@pytest.mark.parametrize(("controls", "task"), [
    ('<PolygonLabels name="p" toName="image"><Label value="a"/></PolygonLabels>', "segment"),
    ('<BrushLabels name="b" toName="image"><Label value="a"/></BrushLabels>', "segment"),
    ('<RectangleLabels name="r" toName="image"/><PolygonLabels name="p" toName="image"/>', "segment"),
    ('<rectanglelabels name="r" toName="image"/><Choices name="c" toName="image"/>', "detect"),
])
def test_the_most_specific_control_decides_the_task(controls: str, task: str) -> None:
    config = parse_label_config(f'<View><Image name="image" value="$image"/>{controls}</View>')
    assert config.task == task


def test_keypoint_labels_without_model_index_follow_document_order() -> None:
    config = parse_label_config('<View><Image name="i" value="$image"/><KeyPointLabels name="k" toName="i">'
                                '<Label value="a"/><Label value="b"/></KeyPointLabels></View>')
    assert keypoint_labels(config.controls[0]) == {0: "a", 1: "b"}


@pytest.mark.parametrize(("xml", "error", "words"), [
    ("", BadRequest, "no label config"),
    ("<View><Image", BadRequest, "not valid XML"),
    ('<?xml version="1.0"?><!DOCTYPE v [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]><View>&b;</View>',
     BadRequest, "not valid XML"),
    ('<View><Text name="t" value="$text"/><Choices name="c" toName="t"/></View>', Unprocessable, "no control tag"),
    ('<View><Image name="i" value="$image"/><RectangleLabels name="r" toName="i" model_score_threshold="2"/>'
     '</View>', BadRequest, "between 0 and 1"),
    ('<View><Image name="i" value="$image"/><KeyPointLabels name="k" toName="i"><Label value="a" '
     'model_index="x"/></KeyPointLabels></View>', BadRequest, "model_index"),
])
def test_bad_configs_are_refused_with_a_message(xml: str, error: type, words: str) -> None:
    with pytest.raises(error) as raised:
        parse_label_config(xml)
    assert words in raised.value.message
