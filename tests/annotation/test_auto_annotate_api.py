"""``POST /api/auto_annotate`` over HTTP with a really trained model: results, parameters and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from imagerec.config import Settings
from tests.annotation.image_samples import jpeg_bytes, noise_jpeg, png_bomb, text_named_jpg, truncated_jpeg
from tests.helpers import api_client
from tests.trained_models import TrainedModel, register_trained_model

pytestmark = pytest.mark.training
URL = "/api/auto_annotate"


@pytest.fixture
def detect(trained_models) -> TrainedModel:
    return trained_models("detect")


@pytest.fixture
def model_id(client: TestClient, detect: TrainedModel) -> int:
    return register_trained_model(client.app, detect)


def annotate(client: TestClient, files: list[tuple[str, bytes]], **form) -> dict | list:
    return client.post(URL, files=[("files", (name, data, "image/jpeg")) for name, data in files], data=form)


def labelled_images(trained: TrainedModel) -> list[tuple[Path, list[tuple[float, float, float, float]]]]:
    """Training images with their drawn boxes in pixels (x1, y1, x2, y2)."""
    found = []
    for label in sorted((trained.dataset_dir / "labels" / "train").glob("*.txt")):
        image = next((trained.dataset_dir / "images" / "train").glob(f"{label.stem}.*"))
        width, height = Image.open(image).size
        boxes = []
        for line in label.read_text().split("\n"):
            if line.strip():
                _, cx, cy, w, h = (float(v) for v in line.split()[:5])
                boxes.append(((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height))
        found.append((image, boxes))
    return found


def iou(a, b) -> float:
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def best_iou(instances: list[dict], box) -> float:
    return max((iou([i["box"][k] for k in ("x1", "y1", "x2", "y2")], box) for i in instances), default=0.0)


def one_object_image(client: TestClient, model_id: int, trained: TrainedModel) -> tuple[Image.Image, tuple]:
    """A training image with one drawn object that the model finds (IoU > 0.5) when shown as stored."""
    for path, boxes in labelled_images(trained):
        if len(boxes) != 1:
            continue
        image = Image.open(path).convert("RGB")
        response = annotate(client, [("plain.jpg", jpeg_bytes(image))], model_id=model_id, conf=0.1)
        if best_iou(response.json()["images"][0]["instances"], boxes[0]) > 0.5:
            return image, boxes[0]
    raise AssertionError("the trained model found none of the single objects; the model is too weak")


# --- results ----------------------------------------------------------------------------------------------------

def test_boxes_land_where_the_objects_are(client: TestClient, model_id: int, detect: TrainedModel) -> None:
    images = labelled_images(detect)[:8]
    files = [(path.name, path.read_bytes()) for path, _ in images]
    response = annotate(client, files, model_id=model_id, conf=0.1)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == {"id": model_id, "name": "trained-detect", "task": "detect",
                             "class_names": detect.class_names}
    assert body["errors"] == []
    assert [image["file_name"] for image in body["images"]] == [name for name, _ in files]
    found = [best_iou(image["instances"], box) > 0.5
             for image, (_, boxes) in zip(body["images"], images) for box in boxes]
    assert sum(found) >= len(found) / 2, found
    instance = body["images"][0]["instances"][0]
    assert instance["class_name"] in detect.class_names and 0 < instance["score"] <= 1
    assert set(instance["box"]) == {"x1", "y1", "x2", "y2", "cx", "cy", "w", "h"}
    assert (body["images"][0]["width"], body["images"][0]["height"]) == (64, 64)


def test_exif_rotated_image_is_annotated_in_the_viewers_frame(
        client: TestClient, model_id: int, detect: TrainedModel) -> None:
    square, box = one_object_image(client, model_id, detect)
    viewer = Image.new("RGB", (96, 64), (75, 75, 75))  # landscape, as the viewer shows it
    viewer.paste(square, (0, 0))
    stored = viewer.transpose(Image.Transpose.ROTATE_90)  # portrait on disk; Orientation 6 turns it back
    assert stored.size == (64, 96)
    response = annotate(client, [("rotated.jpg", jpeg_bytes(stored, orientation=6))], model_id=model_id,
                        conf=0.1, imgsz=96)
    assert response.status_code == 200, response.text
    image = response.json()["images"][0]
    assert (image["width"], image["height"]) == (96, 64)
    assert best_iou(image["instances"], box) > 0.5, image["instances"]


def test_default_model_of_a_task_is_used_without_model_id(client: TestClient, model_id: int) -> None:
    files = [("a.jpg", noise_jpeg(64, 64))]
    missing = annotate(client, files, task="detect")
    assert missing.status_code == 404
    assert "POST /api/models/{id}/default" in missing.json()["detail"]
    assert client.post(f"/api/models/{model_id}/default").status_code == 200
    for form in ({"task": "detect"}, {"shapes": "bbox"}):
        response = annotate(client, files, **form)
        assert response.status_code == 200, response.text
        assert response.json()["model"]["id"] == model_id
    segment = annotate(client, files, shapes="polygon")  # implies a segment model: none is default
    assert segment.status_code == 404 and "segment" in segment.json()["detail"]


def test_without_model_task_or_shapes_the_model_is_unknown(client: TestClient) -> None:
    response = annotate(client, [("a.jpg", noise_jpeg(64, 64))])
    assert response.status_code == 422
    assert "model_id" in response.json()["detail"]
    mixed = annotate(client, [("a.jpg", noise_jpeg(64, 64))], shapes="polygon,keypoints")
    assert mixed.status_code == 422 and "several tasks" in mixed.json()["detail"]


def test_mixed_batch_annotates_the_good_and_reports_the_bad(client: TestClient, model_id: int) -> None:
    response = annotate(client, [("good.jpg", noise_jpeg(64, 64)), ("notes.jpg", text_named_jpg())],
                        model_id=model_id)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [image["file_name"] for image in body["images"]] == ["good.jpg"]
    assert len(body["errors"]) == 1
    assert body["errors"][0]["file_name"] == "notes.jpg" and body["errors"][0]["status_code"] == 415
    assert "notes.jpg" in body["errors"][0]["message"]


def test_when_every_file_is_bad_the_first_error_decides_the_status(client: TestClient, model_id: int) -> None:
    response = annotate(client, [("cut.jpg", truncated_jpeg()), ("empty.jpg", b"")], model_id=model_id)
    assert response.status_code == 400
    body = response.json()
    assert "cut.jpg" in body["detail"]
    assert [(e["file_name"], e["status_code"]) for e in body["errors"]] == [("cut.jpg", 400), ("empty.jpg", 415)]


def test_uploaded_names_lose_their_folders(client: TestClient, model_id: int) -> None:
    response = annotate(client, [("../../etc/x.jpg", noise_jpeg(64, 64))], model_id=model_id)
    assert response.status_code == 200
    assert response.json()["images"][0]["file_name"] == "x.jpg"


def _with_a_weak_prediction(client: TestClient, model_id: int, detect: TrainedModel):
    """The most crowded training image on which the model also makes a prediction below 0.5 (a well-trained
    model is sure of most images: on those, conf 0.5 and conf 0.01 give the same answer)."""
    for path, _boxes in sorted(labelled_images(detect), key=lambda item: -len(item[1])):
        files = [(path.name, path.read_bytes())]
        everything = annotate(client, files, model_id=model_id, conf=0.01).json()["images"][0]["instances"]
        if len(everything) > 1 and min(i["score"] for i in everything) < 0.5:
            return files, everything
    raise AssertionError("the model predicts nothing below 0.5 on any training image")


def test_parameters_are_applied(client: TestClient, model_id: int, detect: TrainedModel) -> None:
    files, everything = _with_a_weak_prediction(client, model_id, detect)
    assert len(annotate(client, files, model_id=model_id, conf=0.01, max_det=1).json()["images"][0]["instances"]) == 1
    strong = annotate(client, files, model_id=model_id, conf=0.5).json()["images"][0]["instances"]
    assert all(i["score"] >= 0.5 for i in strong) and len(strong) < len(everything)
    kept = everything[0]["class_name"]
    only = annotate(client, files, model_id=model_id, conf=0.01, classes=kept).json()["images"][0]["instances"]
    assert only and {i["class_name"] for i in only} == {kept}


# --- bad input: a clear 4xx naming the file, and the server stays up ----------------------------------------------

@pytest.mark.parametrize(("name", "data", "status", "says"), [
    ("cut.jpg", truncated_jpeg(), 400, "cut.jpg is a corrupt or truncated image"),
    ("empty.jpg", b"", 415, "empty.jpg is empty"),
    ("notes.jpg", text_named_jpg(), 415, "notes.jpg is not an image"),
    ("bomb.png", png_bomb(20000), 413, "bomb.png"),
], ids=["truncated", "zero-bytes", "text", "png-bomb"])
def test_bad_files_are_refused_by_name(client: TestClient, model_id: int, name, data, status, says) -> None:
    response = annotate(client, [(name, data)], model_id=model_id)
    assert response.status_code == status, response.text
    assert says in response.json()["detail"]
    assert client.get("/health").status_code == 200


@pytest.fixture
def strict_client(tmp_path: Path) -> TestClient:
    limits = Settings(data_dir=tmp_path / "strict", annotate_max_file_bytes=20_000, annotate_max_files=2)
    with api_client(limits) as strict:
        yield strict


def test_files_over_the_byte_limit_and_too_many_files_are_413(strict_client: TestClient, detect) -> None:
    model_id = register_trained_model(strict_client.app, detect)
    big = noise_jpeg(640, 480)
    assert len(big) > 20_000
    response = annotate(strict_client, [("big.jpg", big)], model_id=model_id)
    assert response.status_code == 413 and "big.jpg" in response.json()["detail"]
    small = noise_jpeg(32, 32)
    too_many = annotate(strict_client, [(f"{i}.jpg", small) for i in range(3)], model_id=model_id)
    assert too_many.status_code == 413 and "at most 2" in too_many.json()["detail"]
    mixed = annotate(strict_client, [("small.jpg", small), ("big.jpg", big)], model_id=model_id)
    assert mixed.status_code == 200
    assert [(e["file_name"], e["status_code"]) for e in mixed.json()["errors"]] == [("big.jpg", 413)]


def test_unknown_model_is_404(client: TestClient) -> None:
    response = annotate(client, [("a.jpg", noise_jpeg(64, 64))], model_id=9999)
    assert response.status_code == 404 and "9999" in response.json()["detail"]
    # the first file is decoded while the model is looked up; the lookup's error still decides
    bad_file = annotate(client, [("notes.jpg", text_named_jpg())], model_id=9999)
    assert bad_file.status_code == 404 and "9999" in bad_file.json()["detail"]


@pytest.mark.parametrize("shapes", ["polygon", "keypoints", "bbox,label"])
def test_a_detect_model_cannot_give_other_shapes(client: TestClient, model_id: int, shapes: str) -> None:
    response = annotate(client, [("a.jpg", noise_jpeg(64, 64))], model_id=model_id, shapes=shapes)
    assert response.status_code == 422, response.text
    assert "detect model cannot produce" in response.json()["detail"]


def test_a_task_that_differs_from_the_model_is_422(client: TestClient, model_id: int) -> None:
    response = annotate(client, [("a.jpg", noise_jpeg(64, 64))], model_id=model_id, task="segment")
    assert response.status_code == 422 and "detect model" in response.json()["detail"]


@pytest.mark.parametrize(("form", "field"), [
    ({"conf": "2"}, "conf"), ({"iou": "-1"}, "iou"), ({"imgsz": "100"}, "imgsz"), ({"max_det": "0"}, "max_det"),
    ({"format": "xml"}, "format"), ({"shapes": "bbox,circle"}, "shapes"), ({"task": "track"}, "task"),
    ({"conf": "high"}, "conf"),
])
def test_invalid_parameters_are_422_naming_the_field(client: TestClient, model_id: int, form, field) -> None:
    response = annotate(client, [("a.jpg", noise_jpeg(64, 64))], model_id=model_id, **form)
    assert response.status_code == 422, response.text
    assert any(field in error["loc"] for error in response.json()["detail"]), response.json()


def test_unknown_class_is_422(client: TestClient, model_id: int) -> None:
    response = annotate(client, [("a.jpg", noise_jpeg(64, 64))], model_id=model_id, classes="square,zebra")
    assert response.status_code == 422 and "zebra" in response.json()["detail"]


def test_no_files_is_422(client: TestClient, model_id: int) -> None:
    assert client.post(URL, data={"model_id": model_id}).status_code == 422


def test_the_endpoint_is_documented(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"][URL]["post"]
    assert "annotation" in operation["tags"]
    assert "multipart/form-data" in operation["requestBody"]["content"]
    assert {"400", "404", "413", "415", "422", "429"} <= set(operation["responses"])
