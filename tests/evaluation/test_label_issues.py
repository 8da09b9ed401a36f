"""Label issues found from hand-built images where the model and the labels disagree."""

from __future__ import annotations

import pytest

from imagerec.evaluation.label_issues import find_classification_label_issues, find_label_issues
from imagerec.evaluation.matching import match_image

A = [0, 0, 10, 10]
FAR = [200, 200, 210, 210]


def image(name: str, labels: list, predictions: list) -> dict:
    return {"image": name, "labels": labels, "predictions": predictions,
            "match": match_image(labels, predictions, conf=0.25, iou=0.5)}


def issue(image_name: str, reason: str, box, class_id: int, predicted: int | None, score: float, iou) -> dict:
    return {"image": image_name, "reason": reason, "box": box, "class_id": class_id, "predicted_class_id": predicted,
            "score": score, "iou": iou}


def busy_image() -> dict:
    labels = [
        [0, *A],  # found: no issue
        [1, 20, 0, 30, 10],  # confidently called class 2: wrong_label
        [2, 40, 0, 50, 10],  # no prediction anywhere near: spurious_label
        [0, 60, 0, 70, 10],  # only a 0.01 prediction is there, but that is enough: no issue
        [1, 80, 0, 90, 10],  # only grazed by a 0.6 prediction: spurious_label with score 0.4
        [0, 100, 0, 110, 10],  # called class 1 without confidence: no issue
    ]
    predictions = [
        [0, 0.95, *A],
        [2, 0.8, 20, 0, 30, 10],
        [3, 0.9, *FAR],  # nothing labelled there: missing_label
        [0, 0.4, 300, 300, 310, 310],  # nothing labelled there, but below min_score
        [0, 0.01, 60, 0, 70, 10],
        [1, 0.6, 89, 0, 99, 10],  # IoU 10/190 with the label at x=80: missing_label too
        [1, 0.3, 100, 0, 110, 10],
    ]
    return image("b.jpg", labels, predictions)


def test_every_reason_in_one_image_ranked_by_score() -> None:
    assert find_label_issues([busy_image()]) == [
        issue("b.jpg", "spurious_label", [40.0, 0.0, 50.0, 10.0], 2, None, 1.0, 0.0),
        issue("b.jpg", "missing_label", [float(v) for v in FAR], 3, 3, 0.9, 0.0),
        issue("b.jpg", "wrong_label", [20.0, 0.0, 30.0, 10.0], 1, 2, 0.8, 1.0),
        issue("b.jpg", "missing_label", [89.0, 0.0, 99.0, 10.0], 1, 1, 0.6, pytest.approx(10 / 190)),
        issue("b.jpg", "spurious_label", [80.0, 0.0, 90.0, 10.0], 1, None, pytest.approx(0.4),
              pytest.approx(10 / 190)),
    ]


def test_min_score_and_near_iou_move_the_cut() -> None:
    reasons = [(found["reason"], found["score"]) for found in find_label_issues([busy_image()], min_score=0.85)]
    assert reasons == [("spurious_label", 1.0), ("missing_label", 0.9), ("spurious_label", pytest.approx(0.4))]
    wide = find_label_issues([busy_image()], near_iou=0.05)  # the grazing box now counts as near its label
    assert [(found["reason"], found["score"]) for found in wide] == [
        ("spurious_label", 1.0), ("missing_label", 0.9), ("wrong_label", 0.8)]


def test_ties_are_ranked_by_image_name_and_cut_at_limit() -> None:
    lone_label = image("a.jpg", [[5, *A]], [])
    images = [busy_image(), lone_label]
    ranked = find_label_issues(images, limit=3)
    assert [(found["image"], found["reason"], found["score"]) for found in ranked] == [
        ("a.jpg", "spurious_label", 1.0), ("b.jpg", "spurious_label", 1.0), ("b.jpg", "missing_label", 0.9)]
    assert ranked[0] == issue("a.jpg", "spurious_label", [0.0, 0.0, 10.0, 10.0], 5, None, 1.0, None)
    assert len(find_label_issues(images)) == 6
    assert find_label_issues(images, limit=0) == []


def test_an_image_without_labels_has_only_missing_labels() -> None:
    found = find_label_issues([image("c.jpg", [], [[4, 0.7, *A], [4, 0.2, *FAR]])])
    assert found == [issue("c.jpg", "missing_label", [0.0, 0.0, 10.0, 10.0], 4, 4, 0.7, None)]


def test_an_image_whose_labels_are_all_found_has_no_issue() -> None:
    assert find_label_issues([image("d.jpg", [[0, *A]], [[0, 0.9, *A], [0, 0.05, 1, 0, 11, 10]])]) == []


def test_classification_confident_wrong_top1_is_a_wrong_label() -> None:
    images = [
        {"image": "x.jpg", "label": 2, "top": [(2, 0.9), (1, 0.05)]},  # right
        {"image": "y.jpg", "label": 2, "top": [(1, 0.7), (2, 0.2)]},  # wrong and sure
        {"image": "z.jpg", "label": 0, "top": [(1, 0.4), (0, 0.35)]},  # wrong but unsure
        {"image": "w.jpg", "label": 0, "top": [(3, 0.95)]},
        {"image": "v.jpg", "label": 0, "top": []},
    ]
    assert find_classification_label_issues(images) == [
        issue("w.jpg", "wrong_label", None, 0, 3, 0.95, None),
        issue("y.jpg", "wrong_label", None, 2, 1, 0.7, None),
    ]
    assert [found["image"] for found in find_classification_label_issues(images, min_score=0.3, limit=2)] == [
        "w.jpg", "y.jpg"]
    assert len(find_classification_label_issues(images, min_score=0.3)) == 3
