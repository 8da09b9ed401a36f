"""Greedy matching of one image's predictions to its labels, on hand-built boxes with known IoUs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from imagerec.evaluation.matching import box_iou, match_classification, match_image

A = [0, 0, 10, 10]
A_SHIFTED_2 = [2, 0, 12, 10]  # IoU with A: 80 / 120 = 2/3
A_SHIFTED_5 = [5, 0, 15, 10]  # IoU with A: 50 / 150 = 1/3, a localisation error
A_TALL = [0, 0, 10, 20]  # IoU with A: 100 / 200 = 0.5 exactly
A_GRAZED = [9, 0, 19, 10]  # IoU with A: 10 / 190, below the localisation floor
FAR = [200, 200, 210, 210]

ZERO = dict.fromkeys(("tp", "fp", "fn", "wrong_class", "localisation"), 0)


def counts(**values: int) -> dict[str, int]:
    return ZERO | values


def match(labels, predictions, **options):
    return match_image(labels, predictions, conf=options.pop("conf", 0.25), iou=options.pop("iou", 0.5), **options)


def test_box_iou_values() -> None:
    ious = box_iou([A], [A, A_SHIFTED_2, A_SHIFTED_5, A_TALL, A_GRAZED, FAR])
    assert ious.shape == (1, 6)
    assert ious[0] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.5, 10 / 190, 0.0])


def test_box_iou_of_empty_and_degenerate_boxes_gives_no_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert box_iou(np.zeros((0, 4)), [A, FAR]).shape == (0, 2)
        assert box_iou([A], []).shape == (1, 0)
        assert box_iou([], []).shape == (0, 0)
        assert box_iou([[5, 5, 5, 5]], [[5, 5, 5, 5]]).tolist() == [[0.0]]


def test_a_wrongly_shaped_input_is_refused_not_regrouped() -> None:
    with pytest.raises(ValueError, match=r"labels must have shape \(n, 5\)"):
        match([[0, 0, 0, 10, 10, 1]] * 5, [])


def test_every_outcome_in_one_image() -> None:
    labels = [
        [0, *A],  # found: tp
        [1, 20, 0, 30, 10],  # called class 2: wrong_class
        [0, 40, 0, 50, 10],  # found with a shifted box: localisation
        [1, 60, 0, 70, 10],  # only a prediction below conf is there: fn
    ]
    predictions = [
        [0, 0.9, *A],
        [2, 0.8, 20, 0, 30, 10],
        [0, 0.7, 45, 0, 55, 10],
        [1, 0.6, *FAR],
        [1, 0.1, 60, 0, 70, 10],
    ]
    result = match(labels, predictions)
    assert result.counts == counts(tp=1, fp=1, fn=1, wrong_class=1, localisation=1)
    assert result.errors == 4
    assert result.max_error_score == 0.8
    assert result.pairs == [
        {"kind": "tp", "label": 0, "prediction": 0, "iou": 1.0, "score": 0.9, "class_id": 0, "label_class_id": 0},
        {"kind": "wrong_class", "label": 1, "prediction": 1, "iou": 1.0, "score": 0.8, "class_id": 2,
         "label_class_id": 1},
        {"kind": "localisation", "label": 2, "prediction": 2, "iou": pytest.approx(1 / 3), "score": 0.7,
         "class_id": 0, "label_class_id": 0},
        {"kind": "fp", "label": None, "prediction": 3, "iou": None, "score": 0.6, "class_id": 1,
         "label_class_id": None},
        {"kind": "fn", "label": 3, "prediction": None, "iou": None, "score": None, "class_id": 1,
         "label_class_id": 1},
    ]


def test_per_class_counts_wrong_class_and_fn_for_the_label_class() -> None:
    labels = [[0, *A], [1, 20, 0, 30, 10], [0, 40, 0, 50, 10], [1, 60, 0, 70, 10]]
    predictions = [[0, 0.9, *A], [2, 0.8, 20, 0, 30, 10], [0, 0.7, 45, 0, 55, 10], [1, 0.6, *FAR]]
    result = match(labels, predictions)
    assert result.per_class == {
        0: counts(tp=1, localisation=1),
        1: counts(fp=1, fn=1, wrong_class=1),  # class 2 was predicted but owns nothing
    }


def test_the_higher_confidence_prediction_takes_the_label_first() -> None:
    predictions = [[0, 0.6, *A], [0, 0.9, *A_SHIFTED_2]]  # the better box comes first but is less sure
    result = match([[0, *A]], predictions)
    assert [(pair["kind"], pair["prediction"]) for pair in result.pairs] == [("tp", 1), ("fp", 0)]
    assert result.pairs[0]["iou"] == pytest.approx(2 / 3)
    assert result.counts == counts(tp=1, fp=1)


def test_a_prediction_takes_the_best_unmatched_label() -> None:
    labels = [[0, *A], [0, 4, 0, 14, 10]]
    predictions = [[0, 0.9, 3, 0, 13, 10], [0, 0.8, *A]]  # the first: IoU 70/130 with label 0, 90/110 with 1
    result = match(labels, predictions)
    assert [(pair["kind"], pair["prediction"], pair["label"]) for pair in result.pairs] == [("tp", 0, 1), ("tp", 1, 0)]
    assert result.pairs[0]["iou"] == pytest.approx(90 / 110)


def test_a_confident_wrong_class_takes_the_label_from_a_later_right_one() -> None:
    result = match([[0, *A]], [[1, 0.9, *A], [0, 0.5, *A]])
    assert [pair["kind"] for pair in result.pairs] == ["wrong_class", "fp"]
    assert result.counts == counts(fp=1, wrong_class=1)
    assert result.max_error_score == 0.9


def test_a_localisation_error_takes_its_label() -> None:
    result = match([[0, *A]], [[0, 0.9, *A_SHIFTED_5], [0, 0.5, *A_SHIFTED_5]])
    assert [(pair["kind"], pair["label"]) for pair in result.pairs] == [("localisation", 0), ("fp", None)]
    assert result.counts == counts(fp=1, localisation=1)


def test_a_duplicate_is_fp_and_leaves_the_other_class_label_unmatched() -> None:
    labels = [[0, *A], [1, *A]]  # two labels on one box, of two classes
    result = match(labels, [[0, 0.9, *A], [0, 0.8, *A]])
    assert [(pair["kind"], pair["label"]) for pair in result.pairs] == [("tp", 0), ("fp", None), ("fn", 1)]


def test_iou_thresholds_are_inclusive_at_iou_and_exclusive_below_the_floor() -> None:
    assert match([[0, *A]], [[0, 0.9, *A_TALL]]).counts == counts(tp=1)  # IoU exactly 0.5
    assert match([[0, *A]], [[0, 0.9, *A_TALL]], iou=0.51).counts == counts(localisation=1)
    assert match([[0, *A]], [[0, 0.9, *A_GRAZED]]).counts == counts(fp=1, fn=1)
    assert match([[0, *A]], [[0, 0.9, *A_GRAZED]], localisation_floor=0.05).counts == counts(localisation=1)


def test_only_predictions_at_or_above_conf_take_part() -> None:
    result = match([[0, *A], [0, *FAR]], [[0, 0.25, *A], [0, 0.2499, *FAR]], conf=0.25)
    assert [(pair["kind"], pair["prediction"], pair["label"]) for pair in result.pairs] == [
        ("tp", 0, 0), ("fn", None, 1)]


def test_no_labels_makes_every_prediction_fp() -> None:
    result = match([], [[0, 0.9, *A], [3, 0.4, *FAR], [0, 0.1, *FAR]])
    assert result.counts == counts(fp=2)
    assert result.per_class == {0: counts(fp=1), 3: counts(fp=1)}
    assert result.max_error_score == 0.9


def test_no_predictions_makes_every_label_fn() -> None:
    result = match(np.array([[0, *A], [2, *FAR]]), np.zeros((0, 6)))
    assert result.counts == counts(fn=2)
    assert result.per_class == {0: counts(fn=1), 2: counts(fn=1)}
    assert result.errors == 2
    assert result.max_error_score == 0.0


def test_an_empty_image_has_nothing() -> None:
    result = match([], [])
    assert (result.counts, result.per_class, result.pairs, result.errors, result.max_error_score) == (
        ZERO, {}, [], 0, 0.0)


def test_only_correct_predictions_have_no_error_score() -> None:
    result = match([[0, *A]], [[0, 0.9, *A]])
    assert (result.errors, result.max_error_score) == (0, 0.0)


@pytest.mark.parametrize("seed", range(20))
def test_counts_add_up_on_random_images(seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = _random_boxes(rng, rng.integers(0, 12), extra_columns=[rng.integers(0, 3, 12)])
    predictions = _random_boxes(rng, rng.integers(0, 20), extra_columns=[rng.integers(0, 3, 20), rng.random(20)])
    result = match(labels, predictions)
    above_conf = int((predictions[:, 1] >= 0.25).sum())
    c = result.counts
    assert c["tp"] + c["wrong_class"] + c["localisation"] + c["fn"] == len(labels)
    assert c["tp"] + c["fp"] + c["wrong_class"] + c["localisation"] == above_conf
    assert len(result.pairs) == above_conf + c["fn"]
    assert result.errors == c["fp"] + c["fn"] + c["wrong_class"] + c["localisation"]
    for kind, total in c.items():
        assert sum(class_counts[kind] for class_counts in result.per_class.values()) == total
    taken = [pair["label"] for pair in result.pairs if pair["label"] is not None]
    assert sorted(taken) == list(range(len(labels)))  # every label appears exactly once


def _random_boxes(rng: np.random.Generator, count: int, *, extra_columns: list[np.ndarray]) -> np.ndarray:
    corners = rng.uniform(0, 60, (count, 2))
    sizes = rng.uniform(5, 30, (count, 2))
    columns = [column[:count] for column in extra_columns]
    return np.column_stack([*columns, corners, corners + sizes]) if count else np.zeros((0, len(columns) + 4))


def test_classification_top1_correct_is_tp() -> None:
    result = match_classification(3, [(3, 0.7), (1, 0.2)])
    assert result.counts == counts(tp=1)
    assert result.per_class == {3: counts(tp=1)}
    assert result.pairs == [{"kind": "tp", "label": 0, "prediction": 0, "iou": None, "score": 0.7, "class_id": 3,
                             "label_class_id": 3}]
    assert (result.errors, result.max_error_score) == (0, 0.0)


def test_classification_top1_wrong_is_wrong_class_for_the_label_class() -> None:
    result = match_classification(3, [(1, 0.6), (3, 0.3)])
    assert result.counts == counts(wrong_class=1)
    assert result.per_class == {3: counts(wrong_class=1)}
    assert result.pairs == [{"kind": "wrong_class", "label": 0, "prediction": 0, "iou": None, "score": 0.6,
                             "class_id": 1, "label_class_id": 3}]
    assert (result.errors, result.max_error_score) == (1, 0.6)


def test_classification_without_a_prediction_is_fn() -> None:
    result = match_classification(2, [])
    assert result.counts == counts(fn=1)
    assert result.per_class == {2: counts(fn=1)}
