"""The evaluation's own data: class names matched by name, labels rewritten in the model's ids, image names
mapped back to the dataset's."""

from __future__ import annotations

from pathlib import Path

import yaml

from imagerec.evaluation.analysis import relative_name
from imagerec.evaluation.data import count_images, match_classes, write_eval_data


def _dataset(root: Path) -> Path:
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        (root / "images" / split / "a.jpg").write_bytes(b"jpeg")
        (root / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n1 0.3 0.3 0.1 0.1\n2 0.7 0.7 0.1 0.1\n")
    return root


def test_classes_are_matched_by_name_and_what_one_side_lacks_is_listed():
    match = match_classes(["square", "circle", "star"], ["circle", "square", "triangle"])
    assert match.common == ["square", "circle"]
    assert match.model_only == ["star"] and match.dataset_only == ["triangle"]


def test_labels_speak_the_models_ids_and_unknown_classes_are_dropped(tmp_path):
    files = _dataset(tmp_path / "files")
    data, split = write_eval_data(task="detect", files_dir=files, dataset_names=["circle", "square", "triangle"],
                                  model_names=["square", "circle"], kpt_shape=None, flip_idx=None, split="val",
                                  work_dir=tmp_path / "eval")
    content = yaml.safe_load(Path(data).read_text())
    assert split == "val" and content["names"] == {0: "square", 1: "circle"}
    assert content["path"] == str(tmp_path / "eval" / "data") and content["val"] == ["images/val"]
    assert (tmp_path / "eval/data/labels/val/a.txt").read_text() == "1 0.5 0.5 0.2 0.2\n0 0.3 0.3 0.1 0.1\n"
    assert (files / "labels/val/a.txt").read_text().startswith("0 0.5")  # the dataset is never written


def test_the_same_classes_read_the_dataset_in_place_and_all_means_every_split(tmp_path):
    files = _dataset(tmp_path / "files")
    data, _ = write_eval_data(task="detect", files_dir=files, dataset_names=["a", "b", "c"],
                              model_names=["a", "b", "c"], kpt_shape=None, flip_idx=None, split="all",
                              work_dir=tmp_path / "eval")
    content = yaml.safe_load(Path(data).read_text())
    assert content["path"] == str(files) and content["val"] == ["images/train", "images/val"]
    assert count_images(files, "detect", "all") == 2 and count_images(files, "detect", "val") == 1


def test_image_names_map_back_to_the_dataset_from_the_evaluations_copy():
    files, copy = Path("/d/ds/files"), Path("/d/runs/1/eval-2/data")
    assert relative_name("/d/ds/files/val/cat/my-img.png", files_dir=files, copy_dir=copy,
                         task="classify") == "val/cat/my-img.png"
    assert relative_name("/d/runs/1/eval-2/data/val/cat/train-my-img.png", files_dir=files, copy_dir=copy,
                         task="classify") == "train/cat/my-img.png"
    assert relative_name("/d/runs/1/eval-2/data/images/val/a.jpg", files_dir=files, copy_dir=copy,
                         task="detect") == "images/val/a.jpg"
