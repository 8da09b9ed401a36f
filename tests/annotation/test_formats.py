"""Each output format, rendered from real predictions and read back the way its consumer reads it."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
from pycocotools.coco import COCO

from imagerec.annotation.formats import RENDERERS, render
from imagerec.annotation.formats.coco import coco_document
from imagerec.annotation.formats.labelstudio import RegionTargets, prediction
from imagerec.annotation.formats.yolo_text import yolo_label_text
from imagerec.annotation.schemas import (
    AnnotateParams,
    AnnotateResponse,
    Box,
    FileError,
    ImageAnnotations,
    Instance,
    Keypoint,
    ModelSummary,
    OutputFormat,
)
from tests.annotation.drawn import Predictors, classify_images, mask_iou, raster, training_images
from tests.trained_models import register_trained_model

pytestmark = pytest.mark.training
TASKS = ["detect", "segment", "pose", "classify"]
KPT_NAMES = ["top", "left", "right"]


@pytest.fixture(scope="module")
def predicted(trained_models) -> dict[str, tuple[ModelSummary, list[ImageAnnotations]]]:
    """Per task: the model summary and real annotations of four training images (lazily, per task)."""
    predictors = Predictors(trained_models)

    class Lazy(dict):
        def __missing__(self, task):
            trained = trained_models(task)
            dataset_dir = trained.dataset_dir
            paths = ([p for p, _ in classify_images(dataset_dir, 4)] if task == "classify"
                     else training_images(dataset_dir, 4))
            kpt_names = KPT_NAMES if task == "pose" else None
            images = [predictors.annotate(task, p, AnnotateParams(conf=0.1), kpt_names=kpt_names) for p in paths]
            model = ModelSummary(id=7, name=f"tiny-{task}", task=task, class_names=trained.class_names)
            self[task] = (model, images)
            return self[task]

    return Lazy()


def test_every_output_format_has_a_renderer():
    assert set(RENDERERS) == set(OutputFormat)


# --- json ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", TASKS)
def test_json_is_the_annotate_response(predicted, task):
    model, images = predicted[task]
    errors = [FileError(file_name="bad.jpg", status_code=400, message="truncated")]
    response = render(OutputFormat.json, model=model, images=images, errors=errors)
    assert response.media_type == "application/json"
    body = AnnotateResponse.model_validate_json(response.body)
    assert body == AnnotateResponse(model=model, images=images, errors=errors)


# --- coco ---------------------------------------------------------------------------------------------------------

def load_coco(tmp_path, document: dict) -> COCO:
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(document))
    return COCO(str(path))


@pytest.mark.parametrize("task", ["detect", "segment", "pose"])
def test_coco_loads_with_pycocotools_and_matches_the_json(predicted, task, tmp_path):
    model, images = predicted[task]
    response = render(OutputFormat.coco, model=model, images=images, errors=[])
    coco = load_coco(tmp_path, json.loads(response.body))
    assert [coco.imgs[i]["file_name"] for i in sorted(coco.imgs)] == [image.file_name for image in images]
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == model.class_names
    for image_id, image in enumerate(images, start=1):
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        assert len(annotations) == len(image.instances)
        for annotation, instance in zip(annotations, image.instances):
            assert annotation["category_id"] == instance.class_id and annotation["score"] == instance.score
            box = instance.box
            assert annotation["bbox"] == pytest.approx([box.x1, box.y1, box.x2 - box.x1, box.y2 - box.y1])
            assert annotation["iscrowd"] == 0
            check_coco_task_fields[task](coco, annotation, instance, image)
    assert sum(len(image.instances) for image in images) > 0


def _check_detect(_coco, annotation, instance, _image):
    assert annotation["area"] == pytest.approx(instance.box.w * instance.box.h * _image.width * _image.height)
    assert "segmentation" not in annotation and "keypoints" not in annotation


def _check_segment(coco, annotation, instance, image):
    assert len(annotation["segmentation"]) == len(instance.polygons)
    ours = raster(instance.polygons, width=image.width, height=image.height)
    theirs = coco.annToMask(annotation).astype(bool)  # pycocotools' own rasteriser
    # COCO puts polygon points on pixel corners, cv2 fills the pixels they name: COCO's mask is ours less about
    # half a pixel all round, and its pixel count is the polygon area we report
    assert (theirs & ~ours).sum() <= 0.05 * theirs.sum() + 5
    assert mask_iou(ours, theirs) >= 0.6
    assert theirs.sum() == pytest.approx(annotation["area"], rel=0.1, abs=4)
    assert 0 < annotation["area"] <= annotation["bbox"][2] * annotation["bbox"][3] + 1e-6


def _check_pose(coco, annotation, instance, _image):
    kept = {k.index: k for k in instance.keypoints}
    triples = np.array(annotation["keypoints"]).reshape(-1, 3)
    assert len(triples) == len(KPT_NAMES) and annotation["num_keypoints"] == len(kept)
    for index, (x, y, v) in enumerate(triples):
        expected = (kept[index].x, kept[index].y, 2) if index in kept else (0, 0, 0)
        assert (x, y, v) == pytest.approx(expected)
    assert coco.loadCats(annotation["category_id"])[0]["keypoints"] == KPT_NAMES


check_coco_task_fields = {"detect": _check_detect, "segment": _check_segment, "pose": _check_pose}


def test_coco_classification_labels_are_annotations_without_boxes(predicted, tmp_path):
    model, images = predicted["classify"]
    coco = load_coco(tmp_path, coco_document(model, images))
    for image_id, image in enumerate(images, start=1):
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        expected = [(label.class_id, label.score) for label in image.labels]
        assert [(a["category_id"], a["score"]) for a in annotations] == expected
        assert all("bbox" not in a for a in annotations)


def test_coco_marks_dropped_keypoints_not_labelled(tmp_path):
    image = ImageAnnotations(file_name="p.jpg", width=100, height=100, instances=[
        pose_instance(keypoints=[Keypoint(index=0, name="top", x=50, y=10, conf=0.9),
                                 Keypoint(index=2, name="right", x=80, y=90, conf=0.8)])])
    model = ModelSummary(id=1, name="pose", task="pose", class_names=["triangle"])
    document = coco_document(model, [image], kpt_names=KPT_NAMES)
    (annotation,) = load_coco(tmp_path, document).loadAnns([1])
    assert annotation["keypoints"] == [50, 10, 2, 0, 0, 0, 80, 90, 2] and annotation["num_keypoints"] == 2


# --- yolo ---------------------------------------------------------------------------------------------------------

def parse_lines(text: str) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in text.splitlines()]


def test_yolo_one_image_is_plain_text_with_the_json_boxes(predicted):
    model, images = predicted["detect"]
    response = render(OutputFormat.yolo, model=model, images=images[:1], errors=[])
    assert response.media_type == "text/plain"
    lines = parse_lines(response.body.decode())
    assert len(lines) == len(images[0].instances) > 0
    for line, instance in zip(lines, images[0].instances):
        box = instance.box
        assert line[0] == instance.class_id
        assert line[1:] == pytest.approx([box.cx, box.cy, box.w, box.h], abs=1e-6)


def test_yolo_several_images_are_a_zip_of_label_files(predicted):
    model, images = predicted["segment"]
    errors = [FileError(file_name="broken.png", status_code=400, message="truncated")]
    response = render(OutputFormat.yolo, model=model, images=images, errors=errors)
    assert response.media_type == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.body))
    stems = [image.file_name.rsplit(".", 1)[0] for image in images]
    assert sorted(archive.namelist()) == sorted([f"{s}.txt" for s in stems] + ["classes.txt", "errors.json"])
    assert archive.read("classes.txt").decode().split() == model.class_names
    assert json.loads(archive.read("errors.json"))[0]["file_name"] == "broken.png"
    for stem, image in zip(stems, images):
        lines = parse_lines(archive.read(f"{stem}.txt").decode())
        polygons = [(i.class_id, p) for i in image.instances for p in i.polygons]
        assert len(lines) == len(polygons)
        for line, (class_id, polygon) in zip(lines, polygons):
            assert line[0] == class_id
            expected = [c / size for x, y in polygon for c, size in ((x, image.width), (y, image.height))]
            assert line[1:] == pytest.approx(expected, abs=1e-6)


def test_yolo_zip_keeps_images_with_the_same_stem_apart():
    model = ModelSummary(id=1, name="d", task="detect", class_names=["square"])
    images = [ImageAnnotations(file_name=name, width=10, height=10) for name in ("a.jpg", "a.png", "../x/a.jpg")]
    archive = zipfile.ZipFile(io.BytesIO(render(OutputFormat.yolo, model=model, images=images, errors=[]).body))
    assert sorted(archive.namelist()) == ["a.txt", "a_2.txt", "a_3.txt", "classes.txt"]


def test_yolo_pose_lines_hold_every_keypoint(predicted):
    model, images = predicted["pose"]
    image = next(image for image in images if image.instances)
    for line, instance in zip(parse_lines(yolo_label_text(image, task="pose", num_keypoints=3)), image.instances):
        assert len(line) == 5 + 3 * 3
        assert line[1:5] == pytest.approx([instance.box.cx, instance.box.cy, instance.box.w, instance.box.h], abs=1e-6)
        for keypoint in instance.keypoints:
            x, y, v = line[5 + 3 * keypoint.index: 8 + 3 * keypoint.index]
            assert (x, y, v) == pytest.approx((keypoint.x / image.width, keypoint.y / image.height, 2), abs=1e-6)


def test_yolo_pose_writes_a_dropped_keypoint_as_zeros():
    image = ImageAnnotations(file_name="p.jpg", width=100, height=100, instances=[
        pose_instance(keypoints=[Keypoint(index=0, x=50, y=10, conf=0.9)])])
    assert yolo_label_text(image, task="pose", num_keypoints=3) == (
        "0 0.500000 0.500000 0.800000 0.800000 0.500000 0.100000 2 0.000000 0.000000 0 0.000000 0.000000 0\n")
    assert yolo_label_text(image, task="pose", kpt_dims=2, num_keypoints=2) == (
        "0 0.500000 0.500000 0.800000 0.800000 0.500000 0.100000 0.000000 0.000000\n")


def test_yolo_segment_without_polygons_writes_boxes():
    box = Box(x1=10, y1=20, x2=30, y2=60, cx=0.2, cy=0.4, w=0.2, h=0.4)
    image = ImageAnnotations(file_name="s.png", width=100, height=100,
                             instances=[Instance(class_id=1, class_name="circle", score=0.5, box=box)])
    assert yolo_label_text(image, task="segment") == "1 0.200000 0.400000 0.200000 0.400000\n"
    vanished = image.instances[0].model_copy(update={"polygons": []})
    text = yolo_label_text(image.model_copy(update={"instances": [vanished]}), task="segment")
    assert text == "1 0.100000 0.200000 0.300000 0.200000 0.300000 0.600000 0.100000 0.600000\n"


def test_yolo_classify_is_the_top_label(predicted):
    model, images = predicted["classify"]
    response = render(OutputFormat.yolo, model=model, images=images[:1], errors=[])
    assert response.body.decode() == f"{images[0].labels[0].class_name}\n"


# --- labelstudio --------------------------------------------------------------------------------------------------

def percent_box(instance: Instance, image: ImageAnnotations) -> list[float]:
    box = instance.box
    return [box.x1 / image.width * 100, box.y1 / image.height * 100, (box.x2 - box.x1) / image.width * 100,
            (box.y2 - box.y1) / image.height * 100]


def region_box(region: dict) -> list[float]:
    value = region["value"]
    return [value["x"], value["y"], value["width"], value["height"]]


def test_labelstudio_render_gives_importable_tasks(predicted):
    model, images = predicted["detect"]
    body = json.loads(render(OutputFormat.labelstudio, model=model, images=images, errors=[]).body)
    assert [task["data"]["image"] for task in body["tasks"]] == [image.file_name for image in images]
    for task, image in zip(body["tasks"], images):
        (result,) = task["predictions"]
        assert result["model_version"] == "imagerec-model-7"
        regions = result["result"]
        assert len(regions) == len(image.instances)
        for region, instance in zip(regions, image.instances):
            assert (region["type"], region["from_name"], region["to_name"]) == ("rectanglelabels", "label", "image")
            assert region["value"]["rectanglelabels"] == [instance.class_name]
            assert region_box(region) == pytest.approx(percent_box(instance, image))
            assert region["score"] == instance.score
        scores = [instance.score for instance in image.instances]
        assert result["score"] == pytest.approx(np.mean(scores) if scores else 0.0)


def test_labelstudio_format_gives_each_region_type_its_own_from_name(client, trained_models):
    """A Label Studio control tag holds one region type: ``format=labelstudio`` of a segmentation model must not
    put its boxes and its polygons under one ``from_name``, or Label Studio cannot import the predictions."""
    trained = trained_models("segment")
    model_id = register_trained_model(client.app, trained)
    files = [("files", (path.name, path.read_bytes(), "image/png")) for path in training_images(trained.dataset_dir, 3)]

    response = client.post("/api/auto_annotate", files=files, data={"model_id": model_id, "format": "labelstudio"})

    assert response.status_code == 200, response.text
    regions = [region for task in response.json()["tasks"] for prediction in task["predictions"]
               for region in prediction["result"]]
    types_by_name: dict[str, set[str]] = {}
    for region in regions:
        types_by_name.setdefault(region["from_name"], set()).add(region["type"])
    assert {"rectanglelabels", "polygonlabels"} <= {region["type"] for region in regions}
    assert all(len(types) == 1 for types in types_by_name.values()), types_by_name
    assert types_by_name == {"label": {"rectanglelabels"}, "polygon": {"polygonlabels"}}  # the documented names


def test_labelstudio_polygons_one_region_per_part(predicted):
    _, images = predicted["segment"]
    targets = RegionTargets(rectangle=None, polygon=("outline", "img"), keypoint=None, choices=None)
    for image in images:
        regions = prediction(image, model_version="v1", targets=targets)["result"]
        parts = [(instance, polygon) for instance in image.instances for polygon in instance.polygons]
        assert len(regions) == len(parts)
        for region, (_instance, polygon) in zip(regions, parts):
            assert (region["type"], region["from_name"], region["to_name"]) == ("polygonlabels", "outline", "img")
            assert region["value"]["closed"] is True
            expected = [c for x, y in polygon for c in (x / image.width * 100, y / image.height * 100)]
            assert [c for point in region["value"]["points"] for c in point] == pytest.approx(expected)
            assert all(0 <= c <= 100 for point in region["value"]["points"] for c in point)


def test_labelstudio_keypoints_hang_from_a_hidden_parent_box(predicted):
    _, images = predicted["pose"]
    image = next(image for image in images if image.instances)
    labels = {0: "apex", 2: "right corner"}  # index 1 is not in the user's config: dropped
    targets = RegionTargets(rectangle=None, keypoint=("points", "image"))
    regions = prediction(image, model_version="v1", targets=targets, label_map={"triangle": "Tri"},
                         keypoint_labels=labels)["result"]
    parents = [r for r in regions if r["type"] == "rectanglelabels"]
    assert len(parents) == len(image.instances)
    for n, (parent, instance) in enumerate(zip(parents, image.instances)):
        assert parent["id"] == f"bbox-{n}" and parent["hidden"] is True and parent["from_name"] == "points_bbox"
        assert parent["value"]["rectanglelabels"] == ["Tri"]
        assert region_box(parent) == pytest.approx(percent_box(instance, image))
        points = [r for r in regions if r.get("parentID") == parent["id"]]
        expected = [k for k in instance.keypoints if k.index in labels]
        assert [p["value"]["keypointlabels"] for p in points] == [[labels[k.index]] for k in expected]
        for point, keypoint in zip(points, expected):
            assert (point["type"], point["from_name"]) == ("keypointlabels", "points")
            assert point["value"]["x"] == pytest.approx(keypoint.x / image.width * 100)
            assert point["value"]["y"] == pytest.approx(keypoint.y / image.height * 100)
            assert point["value"]["width"] > 0 and point["score"] == keypoint.conf


def test_labelstudio_choices_take_the_best_mapped_label(predicted):
    _, images = predicted["classify"]
    image = images[0]
    regions = prediction(image, model_version="v1")["result"]
    assert [r["value"]["choices"] for r in regions] == [[image.labels[0].class_name]]
    assert regions[0]["type"] == "choices" and regions[0]["score"] == image.labels[0].score
    second = image.labels[1]
    mapped = prediction(image, model_version="v1", label_map={second.class_name: "Second"})["result"]
    assert [r["value"]["choices"] for r in mapped] == [["Second"]]


def test_labelstudio_label_map_and_threshold_drop_instances():
    image = ImageAnnotations(file_name="d.jpg", width=200, height=100, instances=[
        Instance(class_id=0, class_name="square", score=0.9, box=make_box(0, 0, 50, 50, 200, 100)),
        Instance(class_id=1, class_name="circle", score=0.6, box=make_box(100, 0, 150, 50, 200, 100)),
        Instance(class_id=2, class_name="triangle", score=0.3, box=make_box(150, 50, 200, 100, 200, 100)),
    ])
    kept = prediction(image, model_version="v", label_map={"square": "Box", "triangle": "Tri"})
    assert [r["value"]["rectanglelabels"] for r in kept["result"]] == [["Box"], ["Tri"]]
    assert kept["score"] == pytest.approx(0.6)
    strong = prediction(image, model_version="v", score_threshold=0.5)
    assert [r["value"]["rectanglelabels"] for r in strong["result"]] == [["square"], ["circle"]]
    assert region_box(strong["result"][1]) == pytest.approx([50, 0, 25, 50])
    assert prediction(image, model_version="v", score_threshold=0.95) == {"result": [], "score": 0.0,
                                                                           "model_version": "v"}


def test_labelstudio_score_counts_only_instances_with_regions():
    polygon = [[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]
    image = ImageAnnotations(file_name="s.png", width=20, height=20, instances=[
        Instance(class_id=0, class_name="square", score=0.9, box=make_box(0, 0, 10, 10, 20, 20), polygons=[]),
        Instance(class_id=0, class_name="square", score=0.5, box=make_box(0, 0, 10, 10, 20, 20),
                 polygons=[polygon]),
    ])
    outline_only = RegionTargets(rectangle=None, keypoint=None, choices=None)
    result = prediction(image, model_version="v", targets=outline_only)
    assert [r["type"] for r in result["result"]] == ["polygonlabels"] and result["score"] == pytest.approx(0.5)


# --- helpers ------------------------------------------------------------------------------------------------------

def make_box(x1, y1, x2, y2, width, height) -> Box:
    return Box(x1=x1, y1=y1, x2=x2, y2=y2, cx=(x1 + x2) / 2 / width, cy=(y1 + y2) / 2 / height,
               w=(x2 - x1) / width, h=(y2 - y1) / height)


def pose_instance(*, keypoints: list[Keypoint]) -> Instance:
    return Instance(class_id=0, class_name="triangle", score=0.9, box=make_box(10, 10, 90, 90, 100, 100),
                    keypoints=keypoints)


