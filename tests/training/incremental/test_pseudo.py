"""Pseudo-labels from the base model's predictions: reading results, then choosing what to keep."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagerec.training.incremental.pseudo import (
    PseudoLabel,
    box_iou,
    from_result,
    label_boxes,
    select_pseudo_labels,
)
from tests.annotation.drawn import load_bgr, training_images

IMAGE = np.zeros((100, 200, 3), np.uint8)  # height 100, width 200: normalising by the wrong side shows


def results(**parts):
    from ultralytics.engine.results import Results

    return Results(IMAGE, path="image.jpg", names={0: "a", 1: "b"}, **parts)


def candidate(class_id: int, confidence: float, box, line: str = "") -> PseudoLabel:
    return PseudoLabel(class_id, confidence, box, line or f"{class_id} 0 0 0 0")


# --- label_boxes --------------------------------------------------------------------------------------------------

def test_label_boxes_of_detect_pose_and_segment_lines():
    assert label_boxes(["0 0.5 0.5 0.2 0.4"], "detect") == [pytest.approx((0.4, 0.3, 0.6, 0.7))]
    assert label_boxes(["1 0.5 0.5 0.2 0.4 0.5 0.3 2"], "pose") == [pytest.approx((0.4, 0.3, 0.6, 0.7))]
    assert label_boxes(["2 0.1 0.2 0.5 0.1 0.3 0.9", ""], "segment") == [pytest.approx((0.1, 0.1, 0.5, 0.9))]


def test_label_boxes_refuses_classify():
    with pytest.raises(ValueError):
        label_boxes(["0"], "classify")


# --- from_result, on Results built by hand -------------------------------------------------------------------

def test_detect_result_becomes_normalised_box_lines():
    boxes = torch.tensor([[20.0, 10.0, 60.0, 50.0, 0.9, 1.0]])  # x1 y1 x2 y2 conf cls, pixels
    [label] = from_result(results(boxes=boxes), "detect")
    assert label.class_id == 1 and label.confidence == pytest.approx(0.9)
    assert label.box == pytest.approx((0.1, 0.1, 0.3, 0.5))
    assert label.line == "1 0.200000 0.300000 0.200000 0.400000"


def test_pose_visibility_follows_keypoint_confidence():
    boxes = torch.tensor([[20.0, 10.0, 60.0, 50.0, 0.8, 0.0]])
    keypoints = torch.tensor([[[40.0, 10.0, 0.9], [20.0, 50.0, 0.2], [60.0, 50.0, 0.5]]])
    [label] = from_result(results(boxes=boxes, keypoints=keypoints), "pose")
    values = label.line.split()
    assert len(values) == 1 + 4 + 3 * 3
    assert values[5:] == ["0.200000", "0.100000", "2", "0.100000", "0.500000", "0", "0.300000", "0.500000", "2"]


def test_pose_without_keypoint_confidence_writes_x_y_only():
    """A [k, 2] model's dataset has no visibility column: a third value would make the line invalid there."""
    boxes = torch.tensor([[20.0, 10.0, 60.0, 50.0, 0.8, 0.0]])
    keypoints = torch.tensor([[[40.0, 10.0], [20.0, 50.0]]])
    [label] = from_result(results(boxes=boxes, keypoints=keypoints), "pose")
    assert label.line.split()[5:] == ["0.200000", "0.100000", "0.100000", "0.500000"]


def test_segment_instances_without_a_polygon_are_skipped():
    boxes = torch.tensor([[20.0, 10.0, 60.0, 50.0, 0.9, 0.0], [150.0, 80.0, 151.0, 81.0, 0.7, 1.0]])
    masks = torch.zeros((2, 100, 200))
    masks[0, 10:50, 20:60] = 1
    masks[1, 80, 150] = 1  # a single pixel: its contour has fewer than three points
    labels = from_result(results(boxes=boxes, masks=masks), "segment")
    assert [label.class_id for label in labels] == [0]
    values = [float(v) for v in labels[0].line.split()[1:]]
    xs, ys = values[0::2], values[1::2]
    assert len(xs) >= 3 and len(xs) == len(ys)
    bounds = (min(xs), min(ys), max(xs), max(ys))
    assert bounds == pytest.approx((0.1, 0.1, 0.3, 0.5), abs=0.02)  # contours run through the edge pixels' centres


def test_a_result_without_boxes_gives_nothing():
    assert from_result(results(boxes=torch.zeros((0, 6))), "detect") == []


# --- select_pseudo_labels ---------------------------------------------------------------------------------------

def test_select_keeps_confident_old_classes_only():
    candidates = [candidate(0, 0.9, (0.0, 0.0, 0.1, 0.1)), candidate(1, 0.3, (0.2, 0.2, 0.3, 0.3)),
                  candidate(2, 0.95, (0.5, 0.5, 0.6, 0.6))]
    kept = select_pseudo_labels(candidates, [], old_count=2, conf=0.5)
    assert [label.class_id for label in kept] == [0]


def test_select_drops_candidates_on_a_human_label_whatever_its_class():
    human = [(0.10, 0.10, 0.30, 0.30)]
    on_it = candidate(0, 0.9, (0.11, 0.11, 0.31, 0.31))
    beside = candidate(0, 0.9, (0.60, 0.60, 0.80, 0.80))
    kept = select_pseudo_labels([on_it, beside], human, old_count=1, conf=0.25)
    assert kept == [beside]


def test_select_keeps_the_more_confident_of_overlapping_candidates():
    weak = candidate(1, 0.6, (0.10, 0.10, 0.30, 0.30))
    strong = candidate(0, 0.8, (0.12, 0.12, 0.32, 0.32))
    apart = candidate(1, 0.7, (0.50, 0.50, 0.70, 0.70))
    kept = select_pseudo_labels([weak, apart, strong], [], old_count=2, conf=0.25)
    assert kept == [strong, apart]
    assert select_pseudo_labels([weak, strong], [], old_count=2, conf=0.25, iou=0.95) == [strong, weak]


# --- from_result on real predictions --------------------------------------------------------------------------

@pytest.mark.training
@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_real_predictions_become_label_lines_that_match_the_boxes(trained_models, task):
    from ultralytics import YOLO

    trained = trained_models(task)
    yolo = YOLO(str(trained.weights))
    width = {"detect": 5, "pose": 5 + 3 * 3}
    checked = 0
    for path in training_images(trained.dataset_dir, 6):
        result = yolo.predict(load_bgr(path), imgsz=64, conf=0.25, verbose=False)[0]
        labels = from_result(result, task)
        expected = result.boxes.xyxyn.cpu().numpy().clip(0, 1)
        if task != "segment":  # segment may skip an instance whose mask has no polygon
            assert len(labels) == len(expected)
        for label in labels:
            values = label.line.split()
            assert int(values[0]) == label.class_id and 0 <= label.class_id < len(trained.class_names)
            numbers = [float(v) for v in values[1:]]
            assert all(0.0 <= v <= 2.0 for v in numbers)
            assert any(np.allclose(label.box, row, atol=1e-6) for row in expected)
            if task == "segment":
                assert len(numbers) % 2 == 0 and len(numbers) >= 6
                assert box_iou(label_boxes([label.line], task)[0], label.box) > 0.5
            else:
                assert len(numbers) + 1 == width[task]
                assert label_boxes([label.line], task)[0] == pytest.approx(label.box, abs=1e-5)
            checked += 1
    assert checked >= 6
