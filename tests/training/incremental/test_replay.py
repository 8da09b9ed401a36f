"""Scanning registered datasets and choosing the replay set."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from imagerec.datasets.synthetic import write_dataset
from imagerec.training.incremental.replay import (
    SourceImage,
    replay_budget,
    scan_split,
    select_replay,
)


def image(index: int, *classes: int, source_id: int = 0) -> SourceImage:
    return SourceImage(Path(f"/data/{source_id}/{index}.jpg"), None, frozenset(classes), source_id)


# --- scan_split -------------------------------------------------------------------------------------------------

def test_scan_finds_images_in_subfolders_maps_classes_and_marks_backgrounds(tmp_path: Path):
    files = tmp_path / "files"
    for rel, label in [("a.jpg", "0 0.5 0.5 0.2 0.2\n2 0.1 0.1 0.1 0.1\n"), ("sub/b.png", "1 0.5 0.5 0.2 0.2"),
                       ("c.jpg", None), ("d.jpg", "\n")]:
        (files / "images/train" / rel).parent.mkdir(parents=True, exist_ok=True)
        (files / "images/train" / rel).write_bytes(b"x")
        if label is not None:
            path = (files / "labels/train" / rel).with_suffix(".txt")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(label)
    scanned = scan_split(files, "train", "detect", [5, 6, 7], source_id=3)
    by_name = {item.image.name: item for item in scanned}
    assert sorted(by_name) == ["a.jpg", "b.png", "c.jpg", "d.jpg"]
    assert by_name["a.jpg"].classes == {5, 7}
    assert by_name["a.jpg"].label == files / "labels/train/a.txt"
    assert by_name["b.png"].classes == {6}
    assert by_name["b.png"].label == files / "labels/train/sub/b.txt"
    assert by_name["c.jpg"].label is None and by_name["c.jpg"].classes == frozenset()
    assert by_name["d.jpg"].label is None  # an empty label file is a background too
    assert {item.source_id for item in scanned} == {3}


def test_scan_refuses_a_class_id_outside_the_map(tmp_path: Path):
    (tmp_path / "images/val").mkdir(parents=True)
    (tmp_path / "images/val/a.jpg").write_bytes(b"x")
    (tmp_path / "labels/val").mkdir(parents=True)
    (tmp_path / "labels/val/a.txt").write_text("4 0.5 0.5 0.1 0.1\n")
    with pytest.raises(ValueError, match="a.txt:1: class id 4"):
        scan_split(tmp_path, "val", "detect", [0, 1], source_id=0)


def test_scan_of_a_classify_dataset_uses_sorted_train_folders_as_dataset_ids(tmp_path: Path):
    files = write_dataset("classify", tmp_path / "cls", train=6, val=3)  # folders circle, square, triangle
    scanned = scan_split(files, "val", "classify", [10, 11, 12], source_id=1)
    assert len(scanned) == 3
    expected = {"circle": 10, "square": 11, "triangle": 12}
    for item in scanned:
        assert item.classes == {expected[item.image.parent.name]}
        assert item.label is None


def test_scan_of_a_synthetic_detect_dataset_agrees_with_its_labels(tmp_path: Path):
    files = write_dataset("detect", tmp_path / "det", train=8, val=2, backgrounds=2)
    scanned = scan_split(files, "train", "detect", [0, 1, 2], source_id=0)
    assert len(scanned) == 10
    assert sum(1 for item in scanned if not item.classes) == 2


# --- replay_budget ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("max_images", "ratio", "new_count", "expected"), [
    (50, 0.5, 1000, 50),  # max_images wins
    (None, 0.25, 100, 25),
    (None, 0.01, 10, 1),  # at least one when ratio > 0
    (None, 0.0, 100, 0),
    (None, None, 100, 0),
    (0, None, 100, 0),
])
def test_replay_budget(max_images, ratio, new_count, expected):
    assert replay_budget(max_images=max_images, ratio=ratio, new_count=new_count) == expected


def test_replay_budget_refuses_negative_values():
    with pytest.raises(ValueError):
        replay_budget(max_images=-1, ratio=None, new_count=10)
    with pytest.raises(ValueError):
        replay_budget(max_images=None, ratio=-0.5, new_count=10)


# --- select_replay --------------------------------------------------------------------------------------------------

def unbalanced() -> list[SourceImage]:
    """90 images of class 0, 8 of class 1, 2 of class 2, one holding both 1 and 2, and 5 backgrounds."""
    images = [image(i, 0) for i in range(90)] + [image(100 + i, 1) for i in range(8)]
    images += [image(200, 2), image(201, 1, 2)] + [image(300 + i) for i in range(5)]
    return images


def test_random_is_a_seeded_sample_without_repeats_and_skips_backgrounds():
    first = select_replay(unbalanced(), budget=20, min_per_class=0, strategy="random", seed=7)
    again = select_replay(unbalanced(), budget=20, min_per_class=0, strategy="random", seed=7)
    other = select_replay(unbalanced(), budget=20, min_per_class=0, strategy="random", seed=8)
    assert first == again
    assert first.images != other.images
    assert len(set(first.images)) == 20
    assert all(item.classes for item in first.images)


def test_class_balanced_gives_rare_classes_their_share():
    selection = select_replay(unbalanced(), budget=12, min_per_class=2, strategy="class_balanced", seed=0)
    assert len(selection.images) == len(set(selection.images)) == 12
    assert selection.per_class[2] == 2  # every image of the rarest class
    assert selection.per_class[1] >= 4
    assert selection.per_class == dict(Counter(c for item in selection.images for c in item.classes))
    assert all(item.classes for item in selection.images)


def test_class_balanced_fill_evens_out_counts_when_candidates_allow():
    images = [image(i, i % 3) for i in range(60)]
    selection = select_replay(images, budget=30, min_per_class=0, strategy="class_balanced", seed=3)
    assert selection.per_class == {0: 10, 1: 10, 2: 10}


def test_class_balanced_is_deterministic_for_a_seed_and_varies_with_it():
    runs = [select_replay(unbalanced(), budget=20, min_per_class=1, strategy="class_balanced", seed=s)
            for s in (1, 1, 2)]
    assert runs[0] == runs[1]
    assert runs[0].images != runs[2].images


def test_min_per_class_wins_over_a_small_budget_up_to_the_candidates():
    images = [image(i, c) for c in range(4) for i in range(10 * c, 10 * c + 3)] + [image(99, 4)]
    selection = select_replay(images, budget=2, min_per_class=3, strategy="class_balanced", seed=0)
    assert selection.per_class == {0: 3, 1: 3, 2: 3, 3: 3}  # class 4 has one candidate: no guarantee
    assert len(selection.images) == 12


def test_backgrounds_are_taken_only_when_nothing_else_is_left():
    images = [image(1, 0), image(2, 1)] + [image(10 + i) for i in range(5)]
    for strategy in ("random", "class_balanced"):
        selection = select_replay(images, budget=4, min_per_class=1, strategy=strategy, seed=0)
        assert len(selection.images) == 4
        assert sum(1 for item in selection.images if not item.classes) == 2
        assert selection.per_class == {0: 1, 1: 1}


def test_budget_zero_selects_nothing_and_unknown_strategy_is_refused():
    assert select_replay(unbalanced(), budget=0, min_per_class=5, strategy="class_balanced", seed=0).images == []
    with pytest.raises(ValueError, match="unknown replay strategy 'newest'"):
        select_replay(unbalanced(), budget=5, min_per_class=0, strategy="newest", seed=0)
