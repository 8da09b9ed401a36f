"""The synthetic generator's options for incremental tests: chosen classes, extra kinds, hidden objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from imagerec.datasets.synthetic import main, write_dataset


def bright_pixels(image: Path) -> int:
    return int((np.asarray(Image.open(image).convert("L")) >= 165).sum())  # shapes are 170+, noise below 110


def labelled_area(label: Path, imgsz: int) -> float:
    if not label.exists():
        return 0.0
    rows = (line.split() for line in label.read_text().splitlines())
    return sum(float(w) * float(h) * imgsz * imgsz for *_, w, h in rows)


def test_classes_set_label_ids_and_names_and_hidden_shapes_are_drawn_unlabelled(tmp_path: Path):
    out = write_dataset("detect", tmp_path / "d", train=24, val=2, classes=["cross", "diamond"],
                        hidden=["square"])
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == ["cross", "diamond"]
    ids = {line.split()[0] for label in (out / "labels/train").glob("*.txt") for line in label.read_text().splitlines()}
    assert ids == {"0", "1"}
    # a drawn but unlabelled square shows as far more bright pixels than the labelled boxes can hold
    unlabelled = [image for image in sorted((out / "images/train").glob("*.jpg"))
                  if bright_pixels(image) > 1.2 * labelled_area(out / "labels/train" / f"{image.stem}.txt", 64)]
    assert len(unlabelled) >= 3


def test_segment_polygons_of_cross_and_diamond(tmp_path: Path):
    out = write_dataset("segment", tmp_path / "s", train=6, val=1, classes=["circle", "cross", "diamond"])
    lengths = {line.split()[0]: len(line.split()) - 1
               for label in (out / "labels/train").glob("*.txt") for line in label.read_text().splitlines()}
    assert {k: v for k, v in lengths.items() if k != "0"} == {"1": 24, "2": 8}  # 12 and 4 corners


def test_classify_uses_the_classes_as_folders_and_ignores_hidden(tmp_path: Path):
    out = write_dataset("classify", tmp_path / "c", train=4, val=2, classes=["diamond", "cross"], hidden=["circle"])
    assert sorted(p.name for p in (out / "train").iterdir()) == ["cross", "diamond"]


@pytest.mark.parametrize(("task", "classes", "hidden"), [
    ("pose", ["square"], None),
    ("detect", ["hexagon"], None),
    ("detect", ["square"], ["square"]),
    ("detect", ["square", "square"], None),
])
def test_bad_options_are_refused(tmp_path: Path, task, classes, hidden):
    with pytest.raises(ValueError):
        write_dataset(task, tmp_path / "x", train=1, val=1, classes=classes, hidden=hidden)


def test_cli_takes_classes_and_hidden(tmp_path: Path):
    main(["--task", "pose", "--out", str(tmp_path / "p"), "--train", "2", "--val", "1", "--classes", "triangle",
          "--hidden", "cross", "diamond"])
    assert yaml.safe_load((tmp_path / "p/data.yaml").read_text())["names"] == ["triangle"]
