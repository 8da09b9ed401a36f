"""Dataset statistics and warnings, on tiny layouts built here (exact counts) and on a synthetic dataset."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from imagerec.datasets.stats import ASPECT_EDGES, SIZE_EDGES, compute_stats
from imagerec.datasets.synthetic import POSE_FLIP_IDX, POSE_KPT_SHAPE, class_names, write_dataset
from imagerec.datasets.validation import Metadata

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (0, 255, 255), (255, 0, 255), (128, 128, 128)]
NAMES = Metadata(class_names=["cat", "dog", "bird"])


class Layout:
    """Writes images (a distinct colour each, unless copied) and label text under a files_dir."""

    def __init__(self, root: Path):
        self.root = root
        self.colours = iter(COLOURS)

    def image(self, rel: str, *, label: str | None = None, copy_of: str | None = None) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if copy_of:
            shutil.copyfile(self.root / copy_of, path)
        else:
            Image.new("RGB", (32, 32), next(self.colours)).save(path)
        if label is not None:
            label_path = self.root / rel.replace("images/", "labels/", 1)
            label_path = label_path.with_suffix(".txt")
            label_path.parent.mkdir(parents=True, exist_ok=True)
            label_path.write_text(label)
        return path


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return Layout(tmp_path / "files")


def test_counts_histograms_and_class_warnings(layout: Layout):
    layout.image("images/train/a.png", label="0 0.5 0.5 0.2 0.1\n1 0.3 0.3 0.05 0.05\n")
    layout.image("images/train/b.png")  # a background: no label file
    layout.image("images/train/c.png", label="0 0.5 0.5 0.5 0.5\n")
    layout.image("images/val/d.png", label="1 0.5 0.5 0.1 0.4\n")

    stats = compute_stats(layout.root, task="detect", metadata=NAMES)
    result = stats.as_dict()

    assert result["splits"] == {
        "train": {"images": 3, "instances": 3, "backgrounds": 1, "classes": {
            "cat": {"images": 2, "instances": 2}, "dog": {"images": 1, "instances": 1},
            "bird": {"images": 0, "instances": 0}}},
        "val": {"images": 1, "instances": 1, "backgrounds": 0, "classes": {
            "cat": {"images": 0, "instances": 0}, "dog": {"images": 1, "instances": 1},
            "bird": {"images": 0, "instances": 0}}},
    }
    train, val = result["boxes"]["train"], result["boxes"]["val"]
    # sizes sqrt(w*h): 0.141, 0.05, 0.5 in train; 0.2 in val. aspects w/h: 2, 1, 1; 0.25
    assert train["size"] == {"edges": list(SIZE_EDGES), "counts": [0, 0, 0, 1, 1, 0, 1, 0]}
    assert train["aspect"]["counts"] == [0, 0, 0, 0, 2, 1, 0, 0]
    assert train["aspect"]["edges"] == [*ASPECT_EDGES[:-1], None]  # JSON has no infinity
    assert val["size"]["counts"] == [0, 0, 0, 0, 0, 1, 0, 0]
    assert val["aspect"]["counts"] == [0, 0, 1, 0, 0, 0, 0, 0]
    assert train["tiny"] == {"cat": 0, "dog": 0, "bird": 0}
    assert result["warnings"] == [
        "1 class has instances in train but none in val (not evaluated): cat",
        "1 class has no instances in any split: bird",
    ]
    json.dumps(result, allow_nan=False)


def test_image_hashes_cover_every_image_and_read_through_symlinks(layout: Layout, tmp_path: Path):
    real = layout.image("images/train/a.png", label="0 0.5 0.5 0.5 0.5\n")
    outside = tmp_path / "elsewhere.png"
    Image.new("RGB", (32, 32), (1, 2, 3)).save(outside)
    (layout.root / "images/val").mkdir(parents=True)
    (layout.root / "images/val/linked.png").symlink_to(outside)

    hashes = compute_stats(layout.root, task="detect", metadata=NAMES).image_hashes

    assert hashes == {
        "images/train/a.png": hashlib.sha256(real.read_bytes()).hexdigest(),
        "images/val/linked.png": hashlib.sha256(outside.read_bytes()).hexdigest(),
    }


def test_leakage_across_splits_is_reported_with_three_examples(layout: Layout):
    for name in "abcd":
        layout.image(f"images/train/{name}.png", label="0 0.5 0.5 0.5 0.5\n")
    for name, source in zip("wxyz", "abcd", strict=True):
        layout.image(f"images/val/{name}.png", label="0 0.5 0.5 0.5 0.5\n", copy_of=f"images/train/{source}.png")
    layout.image("images/test/t.png", copy_of="images/train/a.png")

    warnings = compute_stats(layout.root, task="detect", metadata=Metadata(class_names=["cat"])).warnings

    assert warnings == [
        "4 images appear in both train and val (same content): images/train/a.png = images/val/w.png, "
        "images/train/b.png = images/val/x.png, images/train/c.png = images/val/y.png, …",
        "1 image appears in both train and test (same content): images/train/a.png = images/test/t.png",
        "1 image appears in both val and test (same content): images/val/w.png = images/test/t.png",
    ]


def test_duplicates_within_one_split_are_a_separate_warning(layout: Layout):
    layout.image("images/train/a.png", label="0 0.5 0.5 0.5 0.5\n")
    layout.image("images/train/b.png", label="0 0.5 0.5 0.5 0.5\n", copy_of="images/train/a.png")
    layout.image("images/train/sub/c.png", copy_of="images/train/a.png")
    layout.image("images/val/d.png", label="0 0.5 0.5 0.5 0.5\n")

    stats = compute_stats(layout.root, task="detect", metadata=Metadata(class_names=["cat"]))

    assert stats.warnings == [
        "train: 2 images duplicate another image of the same split (same content): "
        "images/train/a.png = images/train/b.png = …",
    ]
    assert stats.splits["train"].images == 3
    assert stats.splits["train"].backgrounds == 1


def test_tiny_boxes_are_counted_per_class(layout: Layout):
    layout.image("images/train/a.png", label="0 0.5 0.5 0.005 0.005\n0 0.5 0.5 0.5 0.004\n1 0.2 0.2 0.3 0.3\n")
    layout.image("images/train/b.png", label="1 0.5 0.5 0.009 0.009\n")
    layout.image("images/val/c.png", label="0 0.5 0.5 0.3 0.3\n1 0.5 0.5 0.3 0.002\n")

    stats = compute_stats(layout.root, task="detect", metadata=Metadata(class_names=["cat", "dog"]))
    result = stats.as_dict()

    assert result["boxes"]["train"]["tiny"] == {"cat": 2, "dog": 1}
    assert result["boxes"]["val"]["tiny"] == {"cat": 0, "dog": 1}
    # sizes 0.005, 0.045, 0.3, 0.009; aspects 1, 125, 1, 1
    assert result["boxes"]["train"]["size"]["counts"] == [2, 0, 0, 1, 0, 1, 0, 0]
    assert result["boxes"]["train"]["aspect"]["counts"] == [0, 0, 0, 0, 3, 0, 0, 1]
    assert stats.warnings == [
        "4 tiny boxes (side under 1% of the image, or width or height under 0.5%), per class: cat 2, dog 2; "
        "e.g. labels/train/a.txt line 1, labels/train/a.txt line 2, labels/train/b.txt line 1, …",
    ]


def test_near_duplicate_labels_of_one_object(layout: Layout):
    # lines 1 and 4: IoU 0.975; line 3 is the same box but another class; b.txt's boxes overlap with IoU 0.6
    layout.image("images/train/a.png", label="0 0.5 0.5 0.4 0.4\n\n1 0.5 0.5 0.4 0.4\n0 0.5 0.5 0.4 0.39\n")
    layout.image("images/train/b.png", label="0 0.5 0.5 0.4 0.4\n0 0.6 0.5 0.4 0.4\n")
    layout.image("images/val/c.png", label="0 0.5 0.5 0.4 0.4\n1 0.5 0.5 0.4 0.4\n")

    stats = compute_stats(layout.root, task="detect", metadata=Metadata(class_names=["cat", "dog"]))

    assert stats.warnings == [
        "1 pair of boxes of the same class in one image overlap with IoU > 0.9 (one object labelled twice?): "
        "labels/train/a.txt lines 1 and 4",
    ]
    assert stats.splits["train"].instances == 5


def test_segment_boxes_are_the_polygon_extent(layout: Layout):
    layout.image("images/train/a.png", label="0 0.1 0.1 0.4 0.1 0.4 0.2\n")  # 0.3 x 0.1
    layout.image("images/val/b.png", label="0 0.1 0.1 0.5 0.1 0.5 0.5 0.1 0.5\n")  # 0.4 x 0.4

    result = compute_stats(layout.root, task="segment", metadata=Metadata(class_names=["cat"])).as_dict()

    assert result["boxes"]["train"]["size"]["counts"] == [0, 0, 0, 0, 0, 1, 0, 0]  # sqrt(0.03) = 0.17
    assert result["boxes"]["train"]["aspect"]["counts"] == [0, 0, 0, 0, 0, 1, 0, 0]
    assert result["boxes"]["val"]["size"]["counts"] == [0, 0, 0, 0, 0, 0, 1, 0]
    assert result["warnings"] == []


def test_classify_dataset(layout: Layout):
    layout.image("train/cat/a.png")
    layout.image("train/cat/b.png")
    layout.image("train/dog/c.png")
    layout.image("val/cat/d.png", copy_of="train/cat/a.png")

    stats = compute_stats(layout.root, task="classify", metadata=Metadata(class_names=["cat", "dog"]))
    result = stats.as_dict()

    assert "boxes" not in result
    assert result["splits"] == {
        "train": {"images": 3, "instances": 3, "backgrounds": 0,
                  "classes": {"cat": {"images": 2, "instances": 2}, "dog": {"images": 1, "instances": 1}}},
        "val": {"images": 1, "instances": 1, "backgrounds": 0,
                "classes": {"cat": {"images": 1, "instances": 1}, "dog": {"images": 0, "instances": 0}}},
    }
    assert result["warnings"] == [
        "1 image appears in both train and val (same content): train/cat/a.png = val/cat/d.png",
        "1 class has instances in train but none in val (not evaluated): dog",
    ]
    assert sorted(stats.image_hashes) == ["train/cat/a.png", "train/cat/b.png", "train/dog/c.png", "val/cat/d.png"]


@pytest.mark.parametrize("task", ["detect", "segment", "pose", "classify"])
def test_untouched_synthetic_dataset_has_no_leakage(tmp_path: Path, task: str):
    folder = write_dataset(task, tmp_path / "synthetic", train=6, val=3, imgsz=32, backgrounds=1)
    pose = task == "pose"
    metadata = Metadata(class_names=class_names(task), kpt_shape=POSE_KPT_SHAPE if pose else None,
                        flip_idx=POSE_FLIP_IDX if pose else None)

    stats = compute_stats(folder, task=task, metadata=metadata)

    backgrounds = 0 if task == "classify" else 1
    assert stats.splits["train"].images == 6 + backgrounds
    assert stats.splits["val"].images == 3 + backgrounds
    assert stats.splits["train"].backgrounds == backgrounds
    assert len(stats.image_hashes) == 9 + 2 * backgrounds
    assert not [warning for warning in stats.warnings if "same content" in warning]
    assert compute_stats(folder, task=task, metadata=metadata).as_dict() == stats.as_dict()  # deterministic
