"""``POST /labelstudio/predict`` as Label Studio calls it, with real tiny models and a real "Label Studio".

The request is what ``label_studio/ml/api_connector.py`` (``make_predictions``) sends: tasks as Label Studio
serializes them (``data.image`` relative to Label Studio), the project's label config, ``params`` with login,
password and context. The task images are synthetic ones whose drawn shapes are known; a local HTTP server
plays Label Studio and serves them only with the right ``Authorization: Token`` header.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imagerec.config import Settings
from tests.annotation.brush_decode import decode_mask
from tests.annotation.drawn import mask_iou, raster
from tests.helpers import api_client
from tests.labelstudio.fake_label_studio import FakeLabelStudio
from tests.trained_models import TrainedModel, register_trained_model

pytestmark = pytest.mark.training

BOXES = """<View>
  <Image name="img" value="$image"/>
  <RectangleLabels name="boxes" toName="img" {threshold}>
    <Label value="Box" predicted_values="square"/><Label value="CIRCLE"/><Label value="Triangle"/>
  </RectangleLabels>
</View>"""
POLYGONS = """<View>
  <Image name="img" value="$image"/>
  <PolygonLabels name="outline" toName="img">
    <Label value="Box" predicted_values="square"/><Label value="circle"/><Label value="triangle"/>
  </PolygonLabels>
  <RectangleLabels name="boxes" toName="img"><Label value="Box" predicted_values="square"/></RectangleLabels>
</View>"""
BRUSH = """<View>
  <Image name="img" value="$image"/>
  <BrushLabels name="paint" toName="img">
    <Label value="Box" predicted_values="square"/><Label value="circle"/><Label value="triangle"/>
  </BrushLabels>
</View>"""
KEYPOINTS = """<View>
  <KeyPointLabels name="kp" toName="img" model_score_threshold="0.25">
    <Label value="top" predicted_values="triangle" model_index="0"/>
    <Label value="left" predicted_values="triangle" model_index="1"/>
    <Label value="right" predicted_values="triangle" model_index="2"/>
  </KeyPointLabels>
  <Image name="img" value="$image"/>
</View>"""
CHOICES = """<View>
  <Image name="img" value="$image"/>
  <Choices name="shape" toName="img" choice="single" model_score_threshold="0.01">
    <Choice value="Round" predicted_values="circle"/><Choice value="Square"/><Choice value="Triangle"/>
  </Choices>
</View>"""
LABELS = {"square": "Box", "circle": "CIRCLE", "triangle": "Triangle"}


@dataclass(frozen=True)
class Drawn:
    """A shape drawn into a synthetic image, in Label Studio's percent coordinates."""

    class_name: str
    box: tuple[float, float, float, float]  # x1, y1, x2, y2
    keypoints: list[tuple[float, float]]


@pytest.fixture
def label_studio():
    with FakeLabelStudio() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path, allowed_root: Path, label_studio: FakeLabelStudio) -> Settings:
    return Settings(data_dir=tmp_path / "data", allowed_roots=[allowed_root], executor_poll_seconds=0.2,
                    default_workers=0, labelstudio_url=label_studio.url, labelstudio_api_token=label_studio.token)


def default_model(client: TestClient, trained: TrainedModel) -> int:
    model_id = register_trained_model(client.app, trained)
    assert client.post(f"/api/models/{model_id}/default").status_code == 200
    return model_id


def serve_training_images(label_studio: FakeLabelStudio, trained: TrainedModel, count: int) -> list[tuple[str, list]]:
    """The first ``count`` training images, served at /data/upload/1/<name>; their references and shapes."""
    if trained.task == "classify":
        files = [sorted((trained.dataset_dir / "train" / name).glob("*.png"))[0] for name in trained.class_names]
    else:
        files = sorted((trained.dataset_dir / "images" / "train").iterdir())[:count]
    served = []
    for file in files[:count]:
        reference = f"/data/upload/1/{file.name}"
        label_studio.files[reference] = file.read_bytes()
        served.append((reference, drawn(trained, file)))
    return served


def drawn(trained: TrainedModel, image: Path) -> list[Drawn] | str:
    if trained.task == "classify":
        return image.parent.name
    lines = (trained.dataset_dir / "labels" / "train" / f"{image.stem}.txt").read_text().split("\n")
    return [_drawn(trained, [float(v) for v in line.split()]) for line in lines if line.strip()]


def _drawn(trained: TrainedModel, values: list[float]) -> Drawn:
    name, numbers = trained.class_names[int(values[0])], [v * 100 for v in values[1:]]
    if trained.task == "segment":
        xs, ys = numbers[0::2], numbers[1::2]
        return Drawn(name, (min(xs), min(ys), max(xs), max(ys)), [])
    cx, cy, w, h = numbers[:4]
    keypoints = [(numbers[i], numbers[i + 1]) for i in range(4, len(numbers), 3)]
    return Drawn(name, (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), keypoints)


def predict(client: TestClient, label_config: str, references: list[str], **extra):
    tasks = [{"id": 100 + i, "data": {"image": ref}, "annotations": [], "predictions": [], "meta": {},
              "created_at": "2024-06-10T12:00:00Z", "project": 1} for i, ref in enumerate(references)]
    body = {"tasks": tasks, "model_version": None, "project": "1.1718000000", "label_config": label_config,
            "params": {"login": None, "password": None, "context": None}, **extra}
    return client.post("/labelstudio/predict", json=body)


def region_box(region: dict) -> tuple[float, float, float, float]:
    value = region["value"]
    if "points" in value:
        xs, ys = [p[0] for p in value["points"]], [p[1] for p in value["points"]]
        return min(xs), min(ys), max(xs), max(ys)
    return value["x"], value["y"], value["x"] + value["width"], value["y"] + value["height"]


def iou(a, b) -> float:
    inter_w, inter_h = min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1])
    inter = max(inter_w, 0) * max(inter_h, 0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_in_percent(region: dict) -> None:
    value = region["value"]
    coordinates = [c for p in value.get("points", []) for c in p] + [value.get(k, 0) for k in ("x", "y")]
    assert all(0 <= c <= 100 for c in coordinates), region
    assert value.get("x", 0) + value.get("width", 0) <= 100.001
    assert value.get("y", 0) + value.get("height", 0) <= 100.001


def covered(regions: list[dict], shapes: list[Drawn], kind: str) -> int:
    """How many drawn shapes some region of ``kind`` covers (IoU ≥ 0.5); the tiny models mix up classes."""
    return sum(any(iou(region_box(r), shape.box) >= 0.5 for r in regions if r["type"] == kind) for shape in shapes)


def auto_annotated(client: TestClient, label_studio: FakeLabelStudio, reference: str, task: str) -> dict:
    """What ``POST /api/auto_annotate`` says about the same image with the same default model (pixels)."""
    files = {"files": (reference.rsplit("/", 1)[1], label_studio.files[reference], "application/octet-stream")}
    response = client.post("/api/auto_annotate", files=files, data={"task": task})
    assert response.status_code == 200, response.text
    return response.json()["images"][0]


def assert_boxes_match(regions: list[dict], image: dict, labels: dict[str, str]) -> None:
    """One region per mapped instance, labelled through ``labels``, at the instance's box in percent."""
    wanted = sorted((labels[i["class_name"]], round(i["box"]["x1"] / image["width"] * 100, 1),
                     round(i["box"]["y1"] / image["height"] * 100, 1)) for i in image["instances"]
                    if i["class_name"] in labels)
    got = sorted((r["value"]["rectanglelabels"][0], round(r["value"]["x"], 1), round(r["value"]["y"], 1))
                 for r in regions)
    assert got == wanted


def test_rectangles_land_on_the_drawn_shapes_with_mapped_labels(client, label_studio, trained_models) -> None:
    trained = trained_models("detect")
    model_id = default_model(client, trained)
    served = serve_training_images(label_studio, trained, count=3)
    response = predict(client, BOXES.format(threshold=""), [ref for ref, _ in served])
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert len(results) == 3 and all(r["model_version"] == f"imagerec-model-{model_id}" for r in results)
    found = drawn_total = 0
    for result, (reference, shapes) in zip(results, served):
        for region in result["result"]:
            assert (region["from_name"], region["to_name"], region["type"]) == ("boxes", "img", "rectanglelabels")
            assert_in_percent(region)
        assert_boxes_match(result["result"], auto_annotated(client, label_studio, reference, "detect"), LABELS)
        found += covered(result["result"], shapes, "rectanglelabels")
        drawn_total += len(shapes)
    assert found >= drawn_total * 0.6, (found, drawn_total, results)
    assert all(r.authorization == "Token secret-token" for r in label_studio.requests)


def test_model_score_threshold_drops_weaker_regions(client, label_studio, trained_models) -> None:
    trained = trained_models("detect")
    default_model(client, trained)
    references = [ref for ref, _ in serve_training_images(label_studio, trained, count=4)]
    loose = predict(client, BOXES.format(threshold='model_score_threshold="0.05"'), references).json()["results"]
    scores = sorted(r["score"] for result in loose for r in result["result"])
    assert len(scores) >= 4 and scores[0] < scores[-1]
    threshold = round((scores[len(scores) // 2 - 1] + scores[len(scores) // 2]) / 2, 4)
    strict = predict(client, BOXES.format(threshold=f'model_score_threshold="{threshold}"'), references).json()
    kept = [r["score"] for result in strict["results"] for r in result["result"]]
    assert all(score >= threshold for score in kept)
    assert len(kept) == sum(score >= threshold for score in scores)


SEGMENT_LABELS = {"square": "Box", "circle": "circle", "triangle": "triangle"}  # POLYGONS' and BRUSH's labels


def segmentation_predictions(client, label_studio, trained_models, label_config: str) -> tuple[list, list]:
    """Three served training images of the segmentation model (the default) and its predictions for them."""
    trained = trained_models("segment")
    default_model(client, trained)
    served = serve_training_images(label_studio, trained, count=3)
    return served, predict(client, label_config, [ref for ref, _ in served]).json()["results"]


def test_polygons_and_boxes_from_a_segmentation_model(client, label_studio, trained_models) -> None:
    served, results = segmentation_predictions(client, label_studio, trained_models, POLYGONS)
    labels = SEGMENT_LABELS
    found = drawn_total = 0
    for result, (reference, shapes) in zip(results, served):
        polygons = [r for r in result["result"] if r["type"] == "polygonlabels"]
        boxes = [r for r in result["result"] if r["type"] == "rectanglelabels"]
        assert all((r["from_name"], r["to_name"]) == ("outline", "img") for r in polygons)
        assert all(r["from_name"] == "boxes" for r in boxes)
        reference_image = auto_annotated(client, label_studio, reference, "segment")
        assert_boxes_match(boxes, reference_image, {"square": "Box"})  # the boxes tag maps squares only
        parts = sorted((labels[i["class_name"]], len(part)) for i in reference_image["instances"]
                       for part in i["polygons"])
        assert sorted((r["value"]["polygonlabels"][0], len(r["value"]["points"])) for r in polygons) == parts
        for region in polygons:
            assert len(region["value"]["points"]) >= 3 and region["value"]["closed"] is True
            assert_in_percent(region)
        found += covered(polygons, shapes, "polygonlabels")
        drawn_total += len(shapes)
    assert found >= drawn_total * 0.6, (found, drawn_total)


def test_brush_masks_from_a_segmentation_model(client, label_studio, trained_models) -> None:
    served, results = segmentation_predictions(client, label_studio, trained_models, BRUSH)
    labels = SEGMENT_LABELS
    found = drawn_total = 0
    for result, (reference, shapes) in zip(results, served):
        reference_image = auto_annotated(client, label_studio, reference, "segment")
        width, height = reference_image["width"], reference_image["height"]
        regions = result["result"]
        assert [r["value"]["brushlabels"][0] for r in regions] == [
            labels[i["class_name"]] for i in reference_image["instances"]]  # one region per instance, in order
        for region, instance in zip(regions, reference_image["instances"]):
            assert (region["from_name"], region["to_name"], region["type"]) == ("paint", "img", "brushlabels")
            assert (region["original_width"], region["original_height"]) == (width, height)
            assert region["value"]["format"] == "rle"
            mask = decode_mask(region["value"]["rle"], height=height, width=width)
            assert mask_iou(mask, raster(instance["polygons"], width=width, height=height)) == 1.0
        masks = [decode_mask(r["value"]["rle"], height=height, width=width) for r in regions]
        found += sum(any(mask.any() and iou(mask_box_percent(mask), shape.box) >= 0.5 for mask in masks)
                     for shape in shapes)
        drawn_total += len(shapes)
    assert found >= drawn_total * 0.6, (found, drawn_total)


def mask_box_percent(mask) -> tuple[float, float, float, float]:
    ys, xs = mask.nonzero()
    height, width = mask.shape
    return (xs.min() / width * 100, ys.min() / height * 100, (xs.max() + 1) / width * 100,
            (ys.max() + 1) / height * 100)


def test_keypoints_with_hidden_parent_boxes(client, label_studio, trained_models) -> None:
    trained = trained_models("pose")
    default_model(client, trained)
    served = serve_training_images(label_studio, trained, count=3)
    results = predict(client, KEYPOINTS, [ref for ref, _ in served]).json()["results"]
    near = 0
    for result, (_, shapes) in zip(results, served):
        parents = {r["id"]: r for r in result["result"] if r.get("hidden")}
        points = [r for r in result["result"] if r["type"] == "keypointlabels"]
        assert parents and all(p["from_name"] == "kp_bbox" for p in parents.values())
        for point in points:
            assert (point["from_name"], point["to_name"]) == ("kp", "img") and point["parentID"] in parents
            assert point["value"]["keypointlabels"][0] in {"top", "left", "right"}
            assert_in_percent(point)
        for shape in shapes:
            for index, name in enumerate(("top", "left", "right")):
                x, y = shape.keypoints[index]
                near += any(p["value"]["keypointlabels"] == [name] and abs(p["value"]["x"] - x) < 10
                            and abs(p["value"]["y"] - y) < 10 for p in points)
    assert near >= 0.6 * 3 * sum(len(shapes) for _, shapes in served), results


def test_choices_from_a_classification_model(client, label_studio, trained_models) -> None:
    trained = trained_models("classify")
    default_model(client, trained)
    served = serve_training_images(label_studio, trained, count=3)
    results = predict(client, CHOICES, [ref for ref, _ in served]).json()["results"]
    expected = {"circle": "Round", "square": "Square", "triangle": "Triangle"}
    for result, (reference, _) in zip(results, served):
        [region] = result["result"]
        assert (region["from_name"], region["to_name"], region["type"]) == ("shape", "img", "choices")
        top = auto_annotated(client, label_studio, reference, "classify")["labels"][0]
        assert region["value"]["choices"] == [expected[top["class_name"]]]
        assert region["score"] == pytest.approx(top["score"])


def test_a_task_on_another_host_gets_no_prediction_and_nothing_is_fetched_from_it(
        client, label_studio, trained_models) -> None:
    trained = trained_models("detect")
    default_model(client, trained)
    [(good, _)] = serve_training_images(label_studio, trained, count=1)
    with FakeLabelStudio(files=dict(label_studio.files)) as other:
        response = predict(client, BOXES.format(threshold=""), [good, f"{other.url}{good}"])
        assert response.status_code == 200, response.text
        first, second = response.json()["results"]
        # no "result": Label Studio stores nothing for that task and asks for it again later
        assert first["result"] and "result" not in second and "refused" in second["error"]
        alone = predict(client, BOXES.format(threshold=""), [f"{other.url}{good}"])
        assert alone.status_code == 403 and "refused" in alone.json()["detail"]
        assert alone.json()["errors"][0]["task"] == 100
    assert other.requests == []
    assert client.get("/labelstudio/health").json()["status"] == "UP"


def test_a_task_naming_a_label_studio_api_path_gets_no_prediction_and_it_is_never_requested(
        client, label_studio, trained_models) -> None:
    default_model(client, trained_models("detect"))
    [(good, _)] = serve_training_images(label_studio, trained_models("detect"), count=1)
    label_studio.files["/api/projects/1/exports?delete=1"] = b"{}"
    response = predict(client, BOXES.format(threshold=""), [good, "/api/projects/1/exports?delete=1",
                                                            "/data/upload/../../api/projects/1/exports"])
    assert response.status_code == 200, response.text
    first, *refused = response.json()["results"]
    assert first["result"] and ["result" in r for r in refused] == [False, False]
    assert [r.path for r in label_studio.requests] == [good]


def test_without_label_studio_settings_the_error_says_what_to_set(tmp_path, trained_models) -> None:

    with api_client(Settings(data_dir=tmp_path / "bare")) as bare:
        default_model(bare, trained_models("detect"))
        response = predict(bare, BOXES.format(threshold=""), ["/data/upload/1/a.png"])
    assert response.status_code == 403
    assert "IMAGEREC_LABELSTUDIO_URL" in response.json()["detail"]


def test_a_version_label_studio_names_picks_that_model(client, label_studio, trained_models) -> None:
    trained = trained_models("detect")
    default_model(client, trained)
    other_id = register_trained_model(client.app, trained, name="not-default")
    [(reference, _)] = serve_training_images(label_studio, trained, count=1)
    named = predict(client, BOXES.format(threshold=""), [reference], model_version=f"imagerec-model-{other_id}")
    assert named.json()["model_version"] == f"imagerec-model-{other_id}"
    assert named.json()["results"][0]["model_version"] == f"imagerec-model-{other_id}"


def test_labels_that_name_no_class_are_a_clear_422(client, label_studio, trained_models) -> None:
    default_model(client, trained_models("detect"))
    config = '<View><Image name="i" value="$image"/><RectangleLabels name="r" toName="i"><Label value="Car"/>' \
             '</RectangleLabels></View>'
    response = predict(client, config, ["/data/upload/1/a.png"])
    assert response.status_code == 422 and "predicted_values" in response.json()["detail"]
