"""Label Studio JSON and JSON-MIN exports: every region kind, upload-prefixed names, brush RLE, export → import."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from imagerec.datasets.formats import brush, labelstudio
from imagerec.datasets.formats.base import Annotation, Sample
from imagerec.datasets.validation import Metadata
from tests.datasets.formats.helpers import HEIGHT, WIDTH, detect, export_to, read, write_image
from tests.datasets.formats.test_voc import upload_folder


def region(kind: str, value: dict, **extra) -> dict:
    return {"from_name": "label", "to_name": "image", "type": kind, "value": value,
            "original_width": WIDTH, "original_height": HEIGHT, **extra}


def rectangle(label: str, x: float, y: float, w: float, h: float, rotation: float = 0, **extra) -> dict:
    return region("rectanglelabels", {"x": x, "y": y, "width": w, "height": h, "rotation": rotation,
                                      "rectanglelabels": [label]}, **extra)


def keypoint(label: str, x: float, y: float, **extra) -> dict:
    return region("keypointlabels", {"x": x, "y": y, "width": 0.5, "keypointlabels": [label]}, **extra)


def task(image: str, *results: list[dict], **data) -> dict:
    return {"id": len(image), "data": {"image": image, **data},
            "annotations": [{"result": result, "was_cancelled": False} for result in results]}


def brush_mask() -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[10:30, 20:50] = True
    mask[50:52, 0:3] = True  # a smaller second part: the largest outline wins
    return mask


def every_kind(root: Path) -> Path:
    """A JSON export whose first task uses every control type, its images uploaded without Label Studio's prefix."""
    for name in ("a.jpg", "b.jpg", "c.jpg", "stray.jpg"):
        write_image(root / name)
    first = [
        rectangle("cat", 10, 20, 30, 40, id="box1"),
        rectangle("dog", 50, 10, 20, 30, rotation=90),
        region("polygonlabels", {"points": [[10, 10], [50, 10], [30, 70]], "polygonlabels": ["cat"]}),
        region("brushlabels", {"format": "rle", "rle": brush.encode_mask(brush_mask()), "brushlabels": ["dog"]}),
        keypoint("nose", 20, 30, parentID="box1"),
        region("choices", {"choices": ["indoor"]}, from_name="choice"),
        region("textarea", {"text": ["a note"]}, from_name="caption"),
    ]
    cancelled = {"result": [rectangle("cat", 0, 0, 100, 100)], "was_cancelled": True}
    tasks = [
        task("/data/upload/1/ab12cd34-a.jpg", first, [rectangle("bird", 0, 0, 10, 10)], split="train"),
        task("/data/upload/1/0f0f0f0f-b.jpg", split="val") | {"annotations": [cancelled]},  # a background
        task("/data/upload/1/deadbeef-c.jpg", [rectangle("cat", 0, 0, 50, 50)], split="validation"),
        task("/data/upload/1/12345678-gone.jpg", [rectangle("cat", 0, 0, 50, 50)]),
    ]
    (root / "export.json").write_text(json.dumps(tasks))
    return root


def test_json_export_for_detection(tmp_path: Path):
    root = every_kind(tmp_path / "ls")
    assert "export.json is a JSON export" in detect(labelstudio.IMPORTER, root)

    imported, samples, problems = read(labelstudio.IMPORTER, root)

    assert problems.errors == []
    assert imported.metadata.class_names == ["cat", "dog"]  # the shape kinds' labels; "bird" is in a 2nd annotation
    by_name = {sample.name: sample for sample in samples}
    assert {name: sample.split for name, sample in by_name.items()} == {
        "a.jpg": "train", "b.jpg": "val", "c.jpg": "val", "gone.jpg": None}
    assert by_name["gone.jpg"].image is None and by_name["b.jpg"].annotations == []
    boxes = [(annotation.class_id, annotation.box) for annotation in by_name["a.jpg"].annotations]
    assert [class_id for class_id, _ in boxes] == [0, 1, 0, 1]
    expected = [(0.25, 0.4, 0.3, 0.4),
                (31 / 80, 14 / 60, 18 / 80, 16 / 60),  # turned 90° about (40, 6) px: x 22…40, y 6…22
                (0.3, 0.4, 0.4, 0.6),
                (34.5 / 80, 19.5 / 60, 29 / 80, 19 / 60)]  # the brush's larger part, pixel centres 20…49, 10…29
    for (_, box), want in zip(boxes, expected):
        assert box == pytest.approx(want)
    warnings = "\n".join(problems.warnings)
    for expected_warning in ("1 tasks have several annotations", "1 regions of type textarea are not supported",
                             "1 keypointlabels regions were skipped", "1 choices regions were skipped",
                             "1 images are named by no task and were ignored (e.g. stray.jpg)"):
        assert expected_warning in warnings


def test_rectangles_become_polygons_for_segment(tmp_path: Path):
    root = every_kind(tmp_path / "ls")

    _, samples, problems = read(labelstudio.IMPORTER, root, task="segment")

    assert problems.errors == []
    rect, turned, polygon, painted = samples[0].annotations
    assert rect.polygon == pytest.approx((0.1, 0.2, 0.4, 0.2, 0.4, 0.6, 0.1, 0.6))
    assert turned.polygon == pytest.approx((40 / 80, 6 / 60, 40 / 80, 22 / 60, 22 / 80, 22 / 60, 22 / 80, 6 / 60))
    assert polygon.polygon == pytest.approx((0.1, 0.1, 0.5, 0.1, 0.3, 0.7))
    assert len(painted.polygon) == 8  # the brushed rectangle's four corners


def test_pose_groups_keypoints_by_parent(tmp_path: Path):
    for name in ("a.jpg", "b.jpg"):
        write_image(tmp_path / "ls" / name)
    tasks = [
        task("/data/upload/2/a.jpg", [rectangle("person", 10, 10, 40, 40, id="p1"), rectangle("person", 50, 50, 40, 40,
              id="p2"), keypoint("nose", 20, 20, parentID="p1"), keypoint("eye", 60, 60, parentID="p2"),
              keypoint("nose", 70, 70, parentID="p2"), keypoint("eye", 5, 5)]),  # no parent, two boxes: skipped
        task("/data/upload/2/b.jpg", [rectangle("person", 0, 0, 50, 50), keypoint("eye", 25, 25)]),
    ]
    (tmp_path / "ls" / "tasks.json").write_text(json.dumps(tasks))

    imported, samples, problems = read(labelstudio.IMPORTER, tmp_path / "ls", task="pose")

    assert problems.errors == []
    assert (imported.metadata.class_names, imported.metadata.kpt_shape) == (["person"], [2, 3])
    first, second = samples[0].annotations
    assert first.keypoints == pytest.approx((0, 0, 0, 0.2, 0.2, 2))  # eye missing, then nose (sorted labels)
    assert second.keypoints == pytest.approx((0.6, 0.6, 2, 0.7, 0.7, 2))
    assert samples[1].annotations[0].keypoints == pytest.approx((0.25, 0.25, 2, 0, 0, 0))
    assert any("1 keypoints belong to no rectangle" in warning for warning in problems.warnings)


def test_prefixed_upload_with_plain_urls_and_json_min(tmp_path: Path):
    """The reverse of the Label Studio upload: the files carry the prefix and the tasks name the plain files."""
    root = tmp_path / "ls"
    write_image(root / "images" / "ab12cd34-a.jpg")
    write_image(root / "images" / "c0ffee00-b.jpg")
    tasks = [
        {"image": "/data/upload/1/a.jpg", "id": 1, "annotator": 3, "lead_time": 2.5,
         "label": [{"x": 10, "y": 20, "width": 30, "height": 40, "rotation": 0, "rectanglelabels": ["cat"],
                    "original_width": WIDTH, "original_height": HEIGHT}],
         "ellipse": [{"x": 1, "y": 1, "radiusX": 2, "radiusY": 2, "ellipselabels": ["cat"]}], "choice": "indoor"},
        {"image": "b.jpg", "id": 2, "choice": {"choices": ["outdoor", "sunny"]}},
    ]
    (root / "min.json").write_text(json.dumps(tasks))
    assert "min.json is a JSON-MIN export" in detect(labelstudio.IMPORTER, root)

    imported, samples, problems = read(labelstudio.IMPORTER, root)
    assert problems.errors == [] and imported.metadata.class_names == ["cat"]
    assert [(sample.name, sample.image.name) for sample in samples] == [("a.jpg", "ab12cd34-a.jpg"),
                                                                        ("b.jpg", "c0ffee00-b.jpg")]
    assert samples[0].annotations[0].box == pytest.approx((0.25, 0.4, 0.3, 0.4))
    assert any("1 regions of type ellipselabels" in warning for warning in problems.warnings)

    imported, samples, _ = read(labelstudio.IMPORTER, root, task="classify")
    assert imported.metadata.class_names == ["indoor", "outdoor"]
    assert [sample.class_id for sample in samples] == [0, 1]


def test_brush_rle_decodes_literal_runs_and_refuses_a_wrong_size():
    mask = np.random.default_rng(3).random((7, 5)) > 0.5
    assert (brush.decode_mask(brush.encode_mask(mask), width=5, height=7) == mask).all()
    # a 1x1 canvas written as one literal chunk of four words (Label Studio writes these for mixed runs)
    fields = [(4, 32), (7, 5), (2, 4), (3, 4), (7, 4), (15, 4), (0, 1), (0, 2), (3, 3)] + [(255, 8)] * 4
    bits = "".join(format(value, f"0{width}b") for value, width in fields)
    packed = [int(bits[i:i + 8].ljust(8, "0"), 2) for i in range(0, len(bits), 8)]
    assert brush.decode_mask(packed, width=1, height=1).tolist() == [[True]]
    with pytest.raises(ValueError, match="not the 112"):
        brush.decode_mask(brush.encode_mask(mask), width=7, height=4)


@pytest.mark.parametrize("task_name", ["detect", "segment", "pose", "classify"])
def test_export_imports_back(tmp_path: Path, task_name: str):
    images = [write_image(tmp_path / "src" / "a.jpg"), write_image(tmp_path / "src" / "b.jpg", size=(64, 48))]
    metadata = Metadata(class_names=["zebra", "ant", "unused"], kpt_shape=[3, 3] if task_name == "pose" else None)
    classes = [1, 0, 2] if task_name == "classify" else [None] * 3
    samples = [
        Sample("a.jpg", "train", images[0], _annotations(task_name), class_id=classes[0]),
        Sample("sub/b.jpg", "val", images[1], [], class_id=classes[1]),
        Sample("a.jpg", "test", images[1], _annotations(task_name)[:1], class_id=classes[2]),  # a.jpg again
    ]
    out = export_to(labelstudio, tmp_path / "out", task=task_name, metadata=metadata, samples=samples)

    imported, back, problems = read(labelstudio.IMPORTER, out, task=task_name)

    assert problems.errors == [] and problems.warnings == []
    assert imported.metadata == metadata
    key = {(sample.split, sample.name): sample for sample in back}
    assert sorted(key) == sorted((sample.split, sample.name) for sample in samples)
    for original in samples:
        again = key[(original.split, original.name)]
        assert again.class_id == original.class_id
        assert len(again.annotations) == len(original.annotations)
        for a, b in zip(original.annotations, again.annotations):
            assert b.class_id == a.class_id
            assert b.box == pytest.approx(a.box, abs=1e-4)
            assert b.polygon == pytest.approx(a.polygon, abs=1e-4)
            assert b.keypoints == pytest.approx(a.keypoints, abs=1e-4)


def _annotations(task_name: str) -> list[Annotation]:
    if task_name == "classify":
        return []
    if task_name == "segment":
        polygon = (0.1, 0.1, 0.6, 0.2, 0.35, 0.9)
        return [Annotation(1, box=(0.35, 0.5, 0.5, 0.8), polygon=polygon),
                Annotation(0, box=(0.5, 0.5, 0.2, 0.2), polygon=(0.4, 0.4, 0.6, 0.4, 0.6, 0.6, 0.4, 0.6))]
    keypoints = (0.3, 0.35, 2.0, 0.0, 0.0, 0.0, 0.42, 0.5, 2.0) if task_name == "pose" else ()
    return [Annotation(0, box=(0.3, 0.4, 0.2, 0.3), keypoints=keypoints),
            Annotation(1, box=(0.61237, 0.5, 0.5, 0.25), keypoints=keypoints)]


def test_labelstudio_upload_registers(client: TestClient, tmp_path: Path):
    response = upload_folder(client, every_kind(tmp_path / "ls"), tmp_path, task="segment", format="labelstudio")

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "labelstudio"
    assert dataset["class_names"] == ["cat", "dog"]
    assert (dataset["splits"]["train"]["instances"], dataset["splits"]["val"]["images"]) == (4, 2)
    assert any("textarea" in warning for warning in dataset["warnings"])


def test_detection_reads_the_head_of_a_large_export(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "ls"
    write_image(root / "a.jpg")
    many = [task(f"/data/upload/1/{index:08x}-a.jpg", [rectangle("cat", 1, 1, 5, 5)]) for index in range(4000)]
    (root / "big.json").write_text(json.dumps(many))
    huge_first = task("/data/upload/1/ab12cd34-a.jpg", [rectangle("cat", 1, 1, 5, 5, note="x" * 300_000)])
    (tmp_path / "one").mkdir()
    write_image(tmp_path / "one" / "a.jpg")
    (tmp_path / "one" / "export.json").write_text(json.dumps([huge_first]))
    assert (root / "big.json").stat().st_size > labelstudio.SNIFF_BYTES
    whole_reads = []
    monkeypatch.setattr(labelstudio, "_load", lambda tree, rel: whole_reads.append(rel) or None)

    assert "big.json is a JSON export" in detect(labelstudio.IMPORTER, root)
    assert whole_reads == []  # its head was enough
    detect(labelstudio.IMPORTER, tmp_path / "one")
    assert whole_reads == ["export.json"]  # a first task larger than the head: the file is read whole
