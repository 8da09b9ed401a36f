"""Interactive pre-annotation: a click or a drawn box in Label Studio's ``context`` keeps only the instances it
points at."""

from __future__ import annotations

from imagerec.annotation.schemas import Box, ImageAnnotations, Instance, Label
from imagerec.labelstudio.interactive import focus


def _image() -> ImageAnnotations:
    def instance(name: str, cx: float, cy: float) -> Instance:
        return Instance(class_id=0, class_name=name, score=0.9, box=Box(x1=0, y1=0, x2=0, y2=0, cx=cx, cy=cy,
                                                                        w=0.2, h=0.2))

    return ImageAnnotations(file_name="a.jpg", width=100, height=100,
                            instances=[instance("left", 0.2, 0.2), instance("right", 0.8, 0.8)],
                            labels=[Label(class_id=0, class_name="left", score=0.5)])


def _click(x: float, y: float) -> dict:
    return {"type": "keypointlabels", "value": {"x": x, "y": y, "width": 1, "keypointlabels": ["x"]},
            "original_width": 100, "original_height": 100}


def _names(annotations: ImageAnnotations) -> list[str]:
    return [instance.class_name for instance in annotations.instances]


def test_a_click_keeps_the_instance_under_it():
    assert _names(focus(_image(), {"result": [_click(22, 18)]})) == ["left"]
    assert _names(focus(_image(), {"result": [_click(50, 50)]})) == []
    assert _names(focus(_image(), {"result": [_click(22, 18), _click(79, 81)]})) == ["left", "right"]


def test_a_drawn_box_keeps_the_instances_it_overlaps():
    drawn = {"type": "rectanglelabels", "value": {"x": 65, "y": 65, "width": 25, "height": 25}}
    assert _names(focus(_image(), {"result": [drawn]})) == ["right"]
    far = {"type": "rectanglelabels", "value": {"x": 40, "y": 40, "width": 5, "height": 5}}
    assert _names(focus(_image(), {"result": [far]})) == []


def test_no_context_or_a_malformed_one_changes_nothing():
    for context in (None, {}, {"result": "x"}, {"result": [{"value": {"x": "1"}}]}, [1, 2]):
        assert _names(focus(_image(), context)) == ["left", "right"]
    assert focus(_image(), {"result": [_click(50, 50)]}).labels == _image().labels
