"""COCO JSON as CVAT and pycocotools write it: boxes, polygons, RLE, keypoints, problems, and export → import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pycocotools import mask as mask_api

from imagerec.datasets.formats import coco
from imagerec.datasets.formats.base import (
    Annotation,
    Imported,
    ImportOptions,
    Problems,
    Sample,
    SourceTree,
)
from imagerec.datasets.synthetic import zip_folder
from imagerec.datasets.validation import Metadata
from tests.datasets.formats.helpers import export_to

WIDTH, HEIGHT = 64, 48


def write_image(path: Path, *, size: tuple[int, int] = (WIDTH, HEIGHT)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (90, 120, 150)).save(path)
    return path


def write_json(path: Path, document: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))
    return path


def read(root: Path, *, task: str = "detect", **options) -> tuple[Imported, list[Sample], Problems]:
    problems = Problems()
    tree = SourceTree.walk(root, roots=None, problems=problems)
    imported = coco.IMPORTER.read(tree, options=ImportOptions(task=task, **options), problems=problems)
    return imported, sorted(imported.samples, key=lambda sample: (sample.split or "", sample.name)), problems


def detect(root: Path, *, task: str = "detect") -> str | None:
    return coco.IMPORTER.detect(SourceTree.walk(root, roots=None, problems=Problems()), task=task)


def image_entry(image_id: int, file_name: str, **extra) -> dict:
    return {"id": image_id, "file_name": file_name, "width": WIDTH, "height": HEIGHT, "license": 0,
            "flickr_url": "", "coco_url": "", "date_captured": 0} | extra


def box_annotation(annotation_id: int, image_id: int, category_id: int, bbox: list[float], **extra) -> dict:
    x, y, w, h = bbox
    return {"id": annotation_id, "image_id": image_id, "category_id": category_id, "bbox": bbox,
            "segmentation": [[x, y, x + w, y, x + w, y + h, x, y + h]], "area": w * h, "iscrowd": 0,
            "attributes": {"occluded": False}} | extra


def cvat_categories() -> list[dict]:
    # CVAT numbers labels from 1; deleted labels leave gaps
    return [{"id": 1, "name": "dog", "supercategory": ""}, {"id": 3, "name": "cat", "supercategory": ""},
            {"id": 7, "name": "bird", "supercategory": ""}]


def _cvat(root: Path) -> Path:
    """CVAT's "COCO 1.0": annotations/instances_default.json and images/."""
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(root / "images" / name)
    write_json(root / "annotations" / "instances_default.json", {
        "licenses": [{"name": "", "id": 0, "url": ""}], "info": {"contributor": "", "version": ""},
        "categories": cvat_categories(),
        "images": [image_entry(1, "a.jpg"), image_entry(2, "b.jpg"), image_entry(3, "c.jpg")],
        "annotations": [box_annotation(1, 1, 3, [8, 6, 32, 24]), box_annotation(2, 1, 7, [0, 0, 64, 48]),
                        box_annotation(3, 2, 1, [-8, 10, 24, 20])],  # clipped at the left edge
    })
    return root


def test_cvat_coco_folder(tmp_path: Path):
    root = _cvat(tmp_path / "cvat")
    assert detect(root) == "COCO: annotations/instances_default.json has images, annotations and categories"

    imported, samples, problems = read(root)

    assert problems.errors == []
    assert imported.metadata.class_names == ["dog", "cat", "bird"]
    assert [(sample.name, sample.split) for sample in samples] == [("a.jpg", None), ("b.jpg", None),
                                                                   ("c.jpg", None)]
    assert samples[0].image == (root / "images" / "a.jpg").resolve()
    assert [a.class_id for a in samples[0].annotations] == [1, 2]
    assert samples[0].annotations[0].box == pytest.approx((24 / 64, 18 / 48, 32 / 64, 24 / 48), abs=1e-6)
    assert samples[0].annotations[1].box == pytest.approx((0.5, 0.5, 1.0, 1.0), abs=1e-6)
    assert samples[1].annotations[0].box == pytest.approx((8 / 64, 20 / 48, 16 / 64, 20 / 48), abs=1e-6)
    assert samples[2].annotations == []  # listed without objects: a background
    assert any("1 objects reach outside" in warning for warning in problems.warnings)


def test_cvat_polygons_for_segment(tmp_path: Path):
    imported, samples, problems = read(_cvat(tmp_path / "cvat"), task="segment")

    assert problems.errors == []
    polygon = samples[0].annotations[0].polygon
    assert polygon == pytest.approx((8 / 64, 6 / 48, 40 / 64, 6 / 48, 40 / 64, 30 / 48, 8 / 64, 30 / 48), abs=1e-6)
    assert min(samples[1].annotations[0].polygon[0::2]) == 0.0  # clipped


def test_train_val_files_share_classes_by_name(tmp_path: Path):
    root = tmp_path / "set"
    for split in ("train", "val"):
        write_image(root / "images" / split / "x.jpg")  # the same name in both splits
    write_image(root / "images" / "train" / "y.jpg")
    write_image(root / "stray.jpg")  # in no file
    write_json(root / "annotations" / "instances_train.json", {
        "categories": [{"id": 5, "name": "cat"}, {"id": 2, "name": "dog"}],
        "images": [image_entry(1, "x.jpg"), image_entry(2, "y.jpg")],
        "annotations": [box_annotation(1, 1, 5, [0, 0, 32, 24]), box_annotation(2, 2, 2, [32, 24, 32, 24])]})
    write_json(root / "annotations" / "instances_val.json", {
        "categories": [{"id": 1, "name": "cat"}, {"id": 2, "name": "bird"}, {"id": 3, "name": "dog"}],
        "images": [image_entry(7, "x.jpg")],
        "annotations": [box_annotation(1, 7, 2, [0, 0, 16, 16]), box_annotation(2, 7, 3, [16, 16, 16, 16])]})

    imported, samples, problems = read(root)

    assert problems.errors == []
    # dog (id 2) comes before cat (id 5) in the train file; bird is new in val
    assert imported.metadata.class_names == ["dog", "cat", "bird"]
    assert [(sample.split, sample.name) for sample in samples] == [("train", "x.jpg"), ("train", "y.jpg"),
                                                                   ("val", "x.jpg")]
    assert samples[0].image == (root / "images" / "train" / "x.jpg").resolve()
    assert samples[2].image == (root / "images" / "val" / "x.jpg").resolve()
    assert [a.class_id for a in samples[0].annotations] == [1]
    assert [a.class_id for a in samples[2].annotations] == [2, 0]
    assert any("1 images are in no COCO annotation file" in w and "stray.jpg" in w for w in problems.warnings)


def _rle_set(root: Path) -> Path:
    mask = np.zeros((HEIGHT, WIDTH), dtype=np.uint8, order="F")
    mask[10:30, 5:45] = 1  # rows 10–29, columns 5–44
    compressed = mask_api.encode(mask)
    uncompressed = [int(value) for value in _runs(mask)]
    write_image(root / "images" / "m.png")
    write_json(root / "annotations" / "instances_train.json", {
        "categories": [{"id": 1, "name": "blob"}],
        "images": [image_entry(1, "m.png")],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [5, 10, 40, 20], "iscrowd": 0,
             "segmentation": {"size": [HEIGHT, WIDTH], "counts": compressed["counts"].decode()}},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 10, 40, 20], "iscrowd": 0,
             "segmentation": {"size": [HEIGHT, WIDTH], "counts": uncompressed}},
            {"id": 3, "image_id": 1, "category_id": 1, "bbox": [5, 10, 40, 20], "iscrowd": 0,
             "segmentation": {"size": [HEIGHT, WIDTH], "counts": [0, 10 ** 9]}},  # runs past the mask
            {"id": 4, "image_id": 1, "category_id": 1, "bbox": [0, 0, 60, 40], "iscrowd": 0,
             "segmentation": [[50, 30, 60, 30, 60, 40], [0, 0, 20, 0, 20, 20, 0, 20]]},  # two parts
        ]})
    return root


def _runs(mask: np.ndarray) -> list[int]:
    """Uncompressed COCO counts: alternating 0 and 1 runs over the column-major pixels, starting with 0s."""
    flat, runs, current, length = mask.flatten(order="F"), [], 0, 0
    for value in flat:
        if value == current:
            length += 1
        else:
            runs.append(length)
            current, length = value, 1
    return runs + [length]


def test_rle_masks_become_their_outline(tmp_path: Path):
    _, samples, problems = read(_rle_set(tmp_path / "rle"), task="segment")

    assert problems.errors == []
    assert len(samples[0].annotations) == 3
    assert samples[0].annotations[2].polygon == pytest.approx((0, 0, 20 / 64, 0, 20 / 64, 20 / 48, 0, 20 / 48))
    assert any(warning.startswith("1 polygons have several parts") for warning in problems.warnings)
    for annotation in samples[0].annotations[:2]:
        xs = [x * WIDTH for x in annotation.polygon[0::2]]
        ys = [y * HEIGHT for y in annotation.polygon[1::2]]
        assert min(xs) == pytest.approx(5, abs=1) and max(xs) == pytest.approx(45, abs=1)
        assert min(ys) == pytest.approx(10, abs=1) and max(ys) == pytest.approx(30, abs=1)
    assert any("1 RLE masks" in warning and "annotation 3" in warning for warning in problems.warnings)


def _pose_set(root: Path) -> Path:
    write_image(root / "images" / "p.jpg")
    names = ["nose", "left_eye", "right_eye", "Left Ear", "Right Ear"]
    write_json(root / "annotations" / "person_keypoints_val2017.json", {
        "categories": [{"id": 1, "name": "person", "supercategory": "person", "keypoints": names,
                        "skeleton": [[1, 2], [1, 3]]}],
        "images": [image_entry(1, "p.jpg")],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 8, 40, 32], "iscrowd": 0, "num_keypoints": 3,
             "keypoints": [32, 16, 2, 24, 12, 1, 40, 12, 2, 0, 0, 0, 0, 0, 0]},
            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 64, 48], "iscrowd": 1, "num_keypoints": 0,
             "keypoints": [0] * 15, "segmentation": {"size": [HEIGHT, WIDTH], "counts": [0, WIDTH * HEIGHT]}},
        ]})
    return root


def test_keypoints_with_names_give_kpt_shape_and_flip_idx(tmp_path: Path):
    root = _pose_set(tmp_path / "pose")
    imported, samples, problems = read(root, task="pose")

    assert problems.errors == []
    assert imported.metadata.kpt_shape == [5, 3]
    assert imported.metadata.flip_idx == [0, 2, 1, 4, 3]
    assert [sample.split for sample in samples] == ["val"]
    (person,) = samples[0].annotations  # the crowd region is skipped
    assert person.keypoints == pytest.approx((0.5, 16 / 48, 2, 24 / 64, 0.25, 1, 40 / 64, 0.25, 2,
                                              0, 0, 0, 0, 0, 0), abs=1e-6)
    assert any(warning.startswith("1 crowd annotations") for warning in problems.warnings)

    _, _, problems = read(root, task="pose", kpt_shape=[4, 3])
    assert "kpt_shape is [4, 3]" in problems.errors[0]["message"]


def test_dangling_ids_are_errors_naming_the_file(tmp_path: Path):
    root = tmp_path / "bad"
    write_image(root / "images" / "a.jpg")
    write_json(root / "annotations" / "instances_val.json", {
        "categories": [{"id": 1, "name": "dog"}],
        "images": [image_entry(1, "a.jpg"), image_entry(2, "gone.jpg")],
        "annotations": [box_annotation(10, 99, 1, [1, 1, 5, 5]), box_annotation(11, 1, 42, [1, 1, 5, 5]),
                        box_annotation(12, 2, 1, [1, 1, 5, 5]), box_annotation(13, 1, 1, [4, 4, 0, 5])]})

    imported, samples, problems = read(root)

    assert [(error["file"], error["message"]) for error in problems.errors] == [
        ("annotations/instances_val.json", "annotation 10: image_id 99 is not in 'images'"),
        ("annotations/instances_val.json", "annotation 11: category_id 42 is not in 'categories'"),
    ]
    gone = next(sample for sample in samples if sample.name == "gone.jpg")
    assert gone.image is None and gone.source == "annotations/instances_val.json: gone.jpg"  # the writer skips it
    assert any("1 annotations without a usable bbox" in warning for warning in problems.warnings)  # w = 0


def test_detection_ignores_other_json_and_sniffs_only_the_head(tmp_path: Path):
    root = tmp_path / "other"
    write_json(root / "config.json", {"images": 3})
    write_json(root / "tasks.json", [{"data": {"image": "a.jpg"}}])
    assert detect(root) is None

    # a huge file's "annotations" lies past the head: images with file_name are enough
    images = [image_entry(index, f"{index:06d}.jpg") for index in range(2000)]
    write_json(root / "annotations" / "instances_train.json", {"images": images, "annotations": [],
                                                               "categories": []})
    assert detect(root) == "COCO: annotations/instances_train.json has images"
    assert detect(root, task="classify") is None


# --- export ---------------------------------------------------------------------------------------------------


def assert_same(original: list[Annotation], again: list[Annotation]) -> None:
    assert [a.class_id for a in again] == [a.class_id for a in original]
    for a, b in zip(original, again):
        assert b.box == pytest.approx(a.box, abs=1e-4)
        assert b.polygon == pytest.approx(a.polygon, abs=1e-4)
        assert b.keypoints == pytest.approx(a.keypoints, abs=1e-4)


def test_segment_export_imports_back_with_repeated_names(tmp_path: Path):
    first, second = write_image(tmp_path / "src" / "a.jpg"), write_image(tmp_path / "src" / "b.png", size=(80, 60))
    triangle = (0.1, 0.2, 0.61237, 0.2, 0.4, 0.9)
    samples = [
        Sample("a.jpg", "train", first, [Annotation(1, box=(0.35612, 0.55, 0.51237, 0.7), polygon=triangle)]),
        Sample("a.jpg", "val", second, [Annotation(0, box=(0.5, 0.5, 1.0, 1.0),
                                                   polygon=(0, 0, 1, 0, 1, 1, 0, 1))]),  # same name, other split
        Sample("sub/c.png", "val", second),  # a background in a subfolder
    ]
    out = export_to(coco, tmp_path / "out", task="segment", metadata=Metadata(class_names=["zebra", "ant"]),
                    samples=samples)
    document = json.loads((out / "annotations" / "instances_val.json").read_text())
    assert document["categories"] == [{"id": 1, "name": "zebra", "supercategory": "none"},
                                      {"id": 2, "name": "ant", "supercategory": "none"}]
    assert document["images"][0] | {"id": 0} == {"id": 0, "file_name": "a.jpg", "width": 80, "height": 60}
    assert document["annotations"][0]["bbox"] == [0, 0, 80, 60] and document["annotations"][0]["area"] == 4800

    imported, back, problems = read(out, task="segment")

    assert problems.errors == [] and problems.warnings == []
    assert imported.metadata.class_names == ["zebra", "ant"]
    assert [(sample.split, sample.name) for sample in back] == [("train", "a.jpg"), ("val", "a.jpg"),
                                                                ("val", "c.png")]
    assert back[0].image == (out / "images" / "train" / "a.jpg").resolve()
    assert back[1].image == (out / "images" / "val" / "a.jpg").resolve()
    assert back[2].image == (out / "images" / "val" / "sub" / "c.png").resolve()
    for original, again in zip(samples, back):
        assert_same(original.annotations, again.annotations)


def test_detect_and_pose_export_import_back(tmp_path: Path):
    image = write_image(tmp_path / "src" / "a.jpg")
    boxes = [Annotation(0, box=(0.3, 0.4, 0.2, 0.3)), Annotation(1, box=(0.61237, 0.5, 0.5, 0.25))]
    out = export_to(coco, tmp_path / "detect", task="detect", metadata=Metadata(class_names=["a", "b"]),
                    samples=[Sample("a.jpg", "test", image, boxes)])
    _, back, problems = read(out)
    assert problems.errors == [] and [sample.split for sample in back] == ["test"]
    assert_same(boxes, back[0].annotations)

    keypoints = (0.25, 0.5, 2.0, 0.0, 0.0, 0.0, 0.75, 0.5, 1.0)
    people = [Annotation(0, box=(0.5, 0.5, 0.6, 0.4), keypoints=keypoints)]
    metadata = Metadata(class_names=["person"], kpt_shape=[3, 3], flip_idx=[2, 1, 0])
    out = export_to(coco, tmp_path / "pose", task="pose", metadata=metadata, samples=[Sample("a.jpg", "train", image,
                                                                                       people)])
    document = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert document["categories"][0]["keypoints"] == ["kp0", "kp1", "kp2"]
    assert document["annotations"][0]["num_keypoints"] == 2
    imported, back, problems = read(out, task="pose")
    assert problems.errors == []
    assert (imported.metadata.kpt_shape, imported.metadata.flip_idx) == ([3, 3], [2, 1, 0])
    assert_same(people, back[0].annotations)


# --- over HTTP ------------------------------------------------------------------------------------------------


def test_coco_upload_registers(client: TestClient, tmp_path: Path):
    root = tmp_path / "set"
    for split, names in (("train", ["x.jpg", "y.jpg", "z.jpg"]), ("val", ["x.jpg"])):
        for name in names:
            write_image(root / "images" / split / name)
        write_json(root / "annotations" / f"instances_{split}.json", {
            "categories": cvat_categories(),
            "images": [image_entry(number, name) for number, name in enumerate(names + ["missing.jpg"], start=1)],
            "annotations": [box_annotation(number, number, 3, [4, 4, 20, 20]) for number in (1, 2)]})
    archive = zip_folder(root, tmp_path / "set.zip")

    response = client.post("/api/datasets", data={"name": "coco-set", "task": "detect"},  # format detected
                           files={"file": ("d.zip", archive.read_bytes(), "application/zip")})

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "coco"
    assert dataset["format_reason"] == "COCO: annotations/instances_train.json has images, annotations and categories"
    assert dataset["class_names"] == ["dog", "cat", "bird"]
    assert (dataset["splits"]["train"]["images"], dataset["splits"]["val"]["images"]) == (3, 1)
    assert (dataset["splits"]["train"]["instances"], dataset["splits"]["val"]["instances"]) == (2, 1)
    assert any("2 annotated images are not in the source" in warning for warning in dataset["warnings"])
