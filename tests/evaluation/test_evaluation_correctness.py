"""The evaluation's numbers against two references on the same weights and images: plain ``YOLO(w).val`` (equal)
and pycocotools' COCOeval on the same predictions (close: the two interpolate precision differently)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

from tests.evaluation.conftest import evaluate

pytestmark = pytest.mark.training
COCO_TOLERANCE = 0.03  # measured 2026-12-02: see docs/benchmarks.md ("Evaluation correctness")


def _dataset_files(client, dataset_id: int) -> Path:
    settings = client.app.state.settings
    with client.app.state.session_factory() as session:
        from imagerec.datasets.models import Dataset

        return settings.data_dir / session.get(Dataset, dataset_id).storage_path / "files"


def _coco_ground_truth(files: Path, names: list[str], target: Path) -> Path:
    images, annotations = [], []
    for image_path in sorted((files / "images" / "val").iterdir()):
        width, height = Image.open(image_path).size
        images.append({"id": image_path.stem, "width": width, "height": height, "file_name": image_path.name})
        label = files / "labels" / "val" / f"{image_path.stem}.txt"
        for line in label.read_text().splitlines() if label.is_file() else []:
            cls, x, y, w, h = (float(v) for v in line.split()[:5])
            box = [(x - w / 2) * width, (y - h / 2) * height, w * width, h * height]
            annotations.append({"id": len(annotations) + 1, "image_id": image_path.stem, "category_id": int(cls) + 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": index + 1, "name": name} for index, name in enumerate(names)]
    target.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return target


def _cocoeval_map(ground_truth: Path, predictions: Path) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = COCO(str(ground_truth))
    detections = truth.loadRes(str(predictions))
    evaluator = COCOeval(truth, detections, "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    evaluator.summarize()
    return float(evaluator.stats[0])


def test_box_map_equals_plain_val_and_is_close_to_cocoeval(client, registered, tmp_path, trained_models):
    model_id, dataset_id = registered("detect")
    evaluation = evaluate(client, {"model_id": model_id, "dataset_id": dataset_id})
    ours = evaluation["metrics"]["overall"]["box"]

    from ultralytics import YOLO

    files = _dataset_files(client, dataset_id)
    names = trained_models("detect").class_names
    data = tmp_path / "plain.yaml"
    data.write_text(yaml.safe_dump({"path": str(files), "train": "images/val", "val": "images/val",
                                    "names": dict(enumerate(names))}))
    plain = YOLO(str(trained_models("detect").weights)).val(
        data=str(data), imgsz=64, batch=16, device="cpu", workers=0, plots=False, save_json=True,
        project=str(tmp_path), name="plain", exist_ok=True, verbose=False)
    assert ours["map50_95"] == pytest.approx(plain.box.map, abs=1e-6)
    assert ours["map50"] == pytest.approx(plain.box.map50, abs=1e-6)

    coco = _cocoeval_map(_coco_ground_truth(files, names, tmp_path / "truth.json"),
                         Path(plain.save_dir) / "predictions.json")
    print(f"box mAP50-95: imagerec {ours['map50_95']:.4f}, plain val {plain.box.map:.4f}, COCOeval {coco:.4f}")
    assert abs(ours["map50_95"] - coco) <= COCO_TOLERANCE
