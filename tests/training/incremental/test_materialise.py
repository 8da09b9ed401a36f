"""Writing the materialised dataset: links, remapped labels, unique names, ordered class folders."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagerec.files.links import link_file
from imagerec.training.incremental.materialise import (
    LabelledItem,
    classify_folder_names,
    remap_label_lines,
    unique_name,
    write_classify_split,
    write_labelled_split,
)


def source_file(tmp_path: Path, name: str = "a.jpg", content: bytes = b"pixels") -> Path:
    path = tmp_path / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_link_file_hard_links_on_one_filesystem_and_creates_parents(tmp_path: Path):
    source = source_file(tmp_path)
    target = tmp_path / "run" / "images" / "train" / "x.jpg"
    assert link_file(source, target) == "hardlink"
    assert target.read_bytes() == b"pixels"
    assert os.path.samefile(source, target) and not target.is_symlink()


def test_link_file_falls_back_to_a_symlink_then_a_copy(tmp_path: Path, monkeypatch):
    source = source_file(tmp_path)

    def refuse(*args, **kwargs):
        raise OSError(18, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", refuse)
    assert link_file(source, tmp_path / "s.jpg") == "symlink"
    assert (tmp_path / "s.jpg").is_symlink() and (tmp_path / "s.jpg").read_bytes() == b"pixels"
    monkeypatch.setattr(os, "symlink", refuse)
    assert link_file(source, tmp_path / "c.jpg") == "copy"
    assert not (tmp_path / "c.jpg").is_symlink() and (tmp_path / "c.jpg").read_bytes() == b"pixels"


def test_link_file_replaces_an_existing_target(tmp_path: Path):
    target = tmp_path / "run" / "a.jpg"
    link_file(source_file(tmp_path, "old.jpg", b"old"), target)
    link_file(source_file(tmp_path, "new.jpg", b"new"), target)
    assert target.read_bytes() == b"new"


def test_remap_label_lines_replaces_only_the_class_id_and_skips_blank_lines():
    text = "0 0.5 0.5 0.2 0.2\n\n2 0.1 0.2 0.3 0.4 0.5 0.6\n  \n1.0 0.5 0.5 0.1 0.1"
    assert remap_label_lines(text, [4, 0, 7]) == [
        "4 0.5 0.5 0.2 0.2", "7 0.1 0.2 0.3 0.4 0.5 0.6", "0 0.5 0.5 0.1 0.1",
    ]


@pytest.mark.parametrize("line", ["3 0.5 0.5 0.1 0.1", "-1 0.5 0.5 0.1 0.1"])
def test_remap_label_lines_refuses_an_id_outside_the_map(line):
    with pytest.raises(ValueError, match="line 2: class id"):
        remap_label_lines(f"0 0.5 0.5 0.1 0.1\n{line}", [0, 1, 2])


def test_unique_name_tells_datasets_and_items_apart():
    image = Path("/data/images/train/sub/0001.jpg")
    assert unique_name(42, 12, image) == "d12_000042_0001.jpg"
    names = {unique_name(i, d, image) for i in range(3) for d in range(3)}
    assert len(names) == 9


def test_write_labelled_split_links_images_and_writes_labels_only_for_labelled_items(tmp_path: Path):
    items = [
        LabelledItem(source_file(tmp_path, "a.jpg"), ["0 0.5 0.5 0.2 0.2", "3 0.1 0.1 0.1 0.1"], "d1_000000_a.jpg"),
        LabelledItem(source_file(tmp_path, "sub/a.png"), [], "d2_000001_a.png"),
    ]
    root = tmp_path / "run"
    counts = write_labelled_split(root, "train", items)
    assert counts == {"hardlink": 2, "symlink": 0, "copy": 0}
    assert sorted(p.name for p in (root / "images/train").iterdir()) == ["d1_000000_a.jpg", "d2_000001_a.png"]
    assert (root / "labels/train/d1_000000_a.txt").read_text() == "0 0.5 0.5 0.2 0.2\n3 0.1 0.1 0.1 0.1\n"
    assert not (root / "labels/train/d2_000001_a.txt").exists()


def test_write_labelled_split_refuses_two_items_with_one_name(tmp_path: Path):
    image = source_file(tmp_path)
    with pytest.raises(ValueError, match="'x.jpg'"):
        write_labelled_split(tmp_path / "run", "val", [LabelledItem(image, [], "x.jpg")] * 2)


def test_classify_folder_names_sort_in_merged_order_and_are_safe():
    names = ["zebra", "Ant", "a/b", "..", "c\\d e", "猫"]
    folders = classify_folder_names(names)
    assert sorted(folders) == folders
    assert folders[0] == "000-zebra" and folders[1] == "001-Ant"
    assert all("/" not in f and "\\" not in f and " " not in f for f in folders)
    assert folders[5] == "005-猫"
    assert len(classify_folder_names([f"c{i}" for i in range(1500)])[0]) == len("0000-c0")


def test_write_classify_split_links_into_class_folders_and_makes_every_folder(tmp_path: Path):
    names = ["square", "circle", "cross"]
    items = [(source_file(tmp_path, "a.png"), 2, "d1_000000_a.png"), (source_file(tmp_path, "b.png"), 0, "b.png")]
    root = tmp_path / "run"
    counts = write_classify_split(root, "train", items, names)
    assert counts["hardlink"] == 2
    assert (root / "train/002-cross/d1_000000_a.png").read_bytes() == b"pixels"
    assert (root / "train/000-square/b.png").exists()
    assert sorted(p.name for p in (root / "train").iterdir()) == ["000-square", "001-circle", "002-cross"]
    with pytest.raises(ValueError, match="class id 3"):
        write_classify_split(root, "val", [(items[0][0], 3, "z.png")], names)
