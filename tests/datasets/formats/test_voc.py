"""Pascal VOC XML as CVAT and LabelImg write it: reading, hostile XML, and export → import."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.datasets.formats import voc
from imagerec.datasets.formats.base import (
    Annotation,
    Sample,
)
from imagerec.datasets.synthetic import zip_folder
from imagerec.datasets.validation import Metadata
from tests.datasets.formats.helpers import HEIGHT, WIDTH, detect, export_to, read, write_image


def voc_xml(filename: str, objects: list[tuple[str, tuple, int]], *, size: bool = True, path: str = "") -> str:
    size_xml = f"<size><width>{WIDTH}</width><height>{HEIGHT}</height><depth>3</depth></size>" if size else ""
    objects_xml = "".join(
        f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox><xmin>{box[0]}</xmin>"
        f"<ymin>{box[1]}</ymin><xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox></object>"
        for name, box, difficult in objects)
    path_xml = f"<path>{path}</path>" if path else ""
    head = f"<folder>x</folder><filename>{filename}</filename>{path_xml}{size_xml}"
    return f"<annotation>{head}{objects_xml}</annotation>"


def _cvat(root: Path) -> Path:
    """CVAT's "PASCAL VOC 1.1": Annotations/, JPEGImages/, ImageSets/Main, labels.txt."""
    for stem in ("a", "b", "c", "d"):
        write_image(root / "JPEGImages" / f"{stem}.jpg")
    (root / "Annotations").mkdir()
    objects = [("dog", (8, 6, 40, 30), 1), ("cat", (0, 0, 80, 60), 0)]
    (root / "Annotations" / "a.xml").write_text(voc_xml("a.jpg", objects))
    (root / "Annotations" / "b.xml").write_text(voc_xml("b.jpg", [("cat", (10, 10, 10, 30), 0)]))  # no area
    (root / "Annotations" / "c.xml").write_text(voc_xml("c.jpg", [("cat", (-5, 20, 100, 50), 0)]))  # clipped
    (root / "Annotations" / "e.xml").write_text(voc_xml("e.jpg", [("cat", (1, 1, 5, 5), 0)]))  # image missing
    (root / "ImageSets" / "Main").mkdir(parents=True)
    (root / "ImageSets" / "Main" / "train.txt").write_text("a\nb\nd\n")
    (root / "ImageSets" / "Main" / "val.txt").write_text("c\n")
    (root / "ImageSets" / "Main" / "trainval.txt").write_text("a\nb\nc\nd\n")  # only repeats train + val
    (root / "labels.txt").write_text("dog\ncat\nbird\n")
    return root


def test_cvat_voc_folder(tmp_path: Path):
    root = _cvat(tmp_path / "cvat")
    assert "Annotations/a.xml" in detect(voc.IMPORTER, root)
    assert detect(voc.IMPORTER, root, task="segment") is None

    imported, samples, problems = read(voc.IMPORTER, root)

    assert problems.errors == []
    assert imported.metadata.class_names == ["dog", "cat", "bird"]  # labels.txt's order, not sorted
    by_name = {sample.name: sample for sample in samples}
    assert {name: sample.split for name, sample in by_name.items()} == {
        "a.jpg": "train", "b.jpg": "train", "c.jpg": "val", "d.jpg": "train", "e.jpg": None}
    dog, cat = by_name["a.jpg"].annotations
    assert (dog.class_id, dog.difficult, cat.class_id, cat.difficult) == (0, True, 1, False)
    assert dog.box == pytest.approx((24 / 80, 18 / 60, 32 / 80, 24 / 60))
    assert cat.box == pytest.approx((0.5, 0.5, 1.0, 1.0))
    assert by_name["b.jpg"].annotations == []
    assert by_name["c.jpg"].annotations[0].box == pytest.approx((0.5, 35 / 60, 1.0, 0.5))
    assert by_name["d.jpg"].annotations == [] and by_name["d.jpg"].image is not None  # a background
    assert by_name["e.jpg"].image is None  # the writer counts and skips it
    assert any("1 boxes with no area" in warning for warning in problems.warnings)
    assert any("1 images have no VOC XML" in warning for warning in problems.warnings)


def test_labelimg_folder_without_image_sets(tmp_path: Path):
    root = tmp_path / "labelimg"
    write_image(root / "pics" / "one.jpg")
    write_image(root / "pics" / "two.png", size=(40, 30))
    # LabelImg: 0-based pixels, the path of the annotator's machine, and sometimes no <size>
    (root / "pics" / "one.xml").write_text(voc_xml("one.jpg", [("zebra", (0, 0, 39, 29), 0)],
                                                   path="/home/someone/pics/one.jpg"))
    (root / "pics" / "two.xml").write_text(voc_xml("renamed.png", [("ant", (0, 0, 20, 15), 0)], size=False))

    imported, samples, problems = read(voc.IMPORTER, root)

    assert problems.errors == [] and problems.warnings == []
    assert imported.metadata.class_names == ["ant", "zebra"]
    assert [(sample.name, sample.split) for sample in samples] == [("pics/one.jpg", None), ("pics/two.png", None)]
    assert samples[0].annotations[0].box == pytest.approx((19.5 / 80, 14.5 / 60, 39 / 80, 29 / 60))
    assert samples[1].annotations[0].box == pytest.approx((0.25, 0.25, 0.5, 0.5))  # size from the image header


BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<annotation><filename>a.jpg</filename><object><name>&lol9;</name></object></annotation>
"""


def test_billion_laughs_is_an_error_not_an_expansion(tmp_path: Path):
    root = _cvat(tmp_path / "cvat")
    (root / "Annotations" / "lol.xml").write_text(BILLION_LAUGHS)

    _, _, problems = read(voc.IMPORTER, root)

    assert [(error["file"], "entities are not accepted" in error["message"]) for error in problems.errors] == [
        ("Annotations/lol.xml", True)]


def test_non_numeric_coordinates_name_the_file(tmp_path: Path):
    root = _cvat(tmp_path / "cvat")
    (root / "Annotations" / "a.xml").write_text(voc_xml("a.jpg", [("dog", ("left", 1, 5, 5), 0)]))

    _, _, problems = read(voc.IMPORTER, root)

    assert len(problems.errors) == 1
    assert problems.errors[0]["file"] == "Annotations/a.xml" and "'left'" in problems.errors[0]["message"]


def test_export_imports_back_with_splits_and_difficult(tmp_path: Path):
    first = write_image(tmp_path / "src" / "a.jpg")
    second = write_image(tmp_path / "src" / "b.png", size=(64, 48))
    metadata = Metadata(class_names=["zebra", "ant"])
    samples = [
        Sample("a.jpg", "train", first, [Annotation(0, box=(0.3, 0.4, 0.2, 0.3)),
                                         Annotation(1, box=(0.61237, 0.5, 0.5, 0.25), difficult=True)]),
        Sample("a.jpg", "val", second, [Annotation(1, box=(0.5, 0.5, 1.0, 1.0))]),  # same name, another split
        Sample("b.png", "test", second),  # a background
    ]
    out = export_to(voc, tmp_path / "out", task="detect", metadata=metadata, samples=samples)
    assert (out / "ImageSets" / "Main" / "val.txt").read_text() == "val_a\n"

    imported, back, problems = read(voc.IMPORTER, out)

    assert problems.errors == [] and problems.warnings == []
    assert imported.metadata.class_names == ["zebra", "ant"]
    assert [(sample.name, sample.split) for sample in back] == [("a.jpg", "train"), ("b.png", "test"),
                                                                ("val_a.jpg", "val")]
    for original, again in zip(samples, (back[0], back[2], back[1])):
        assert [(a.class_id, a.difficult) for a in again.annotations] == [
            (a.class_id, a.difficult) for a in original.annotations]
        for a, b in zip(original.annotations, again.annotations):
            assert b.box == pytest.approx(a.box, abs=1e-4)


def upload_folder(client: TestClient, folder: Path, tmp_path: Path, *, task: str = "detect", **fields):
    archive = zip_folder(folder, tmp_path / f"{folder.name}.zip")
    return client.post("/api/datasets", data={"name": folder.name, "task": task, **fields},
                       files={"file": ("d.zip", archive.read_bytes(), "application/zip")})


def test_voc_upload_registers(client: TestClient, tmp_path: Path):
    response = upload_folder(client, _cvat(tmp_path / "cvat"), tmp_path, format="voc")

    assert response.status_code == 201, response.text
    dataset = response.json()
    assert dataset["format"] == "voc"
    assert dataset["class_names"] == ["dog", "cat", "bird"]
    assert (dataset["splits"]["train"]["images"], dataset["splits"]["val"]["images"]) == (3, 1)
    assert any("not in the source" in warning for warning in dataset["warnings"])  # e.xml's image
