"""ONNX Runtime for annotation on a CPU: the same annotations as PyTorch, one export per weights file, its
threads pinned, and PyTorch whenever ONNX cannot serve."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from imagerec.annotation.predictions import predict_kwargs, to_annotations
from imagerec.annotation.runtimes import chosen_runtime, cpu_threads, load_inference_model, onnx_file
from imagerec.annotation.schemas import AnnotateParams, ImageAnnotations
from imagerec.config import Settings
from tests.annotation.drawn import box_iou, classify_images, instance_box, load_bgr, mask_iou, raster, training_images


def annotate(model, image: Path) -> ImageAnnotations:
    params = AnnotateParams()
    result = model.yolo.predict(load_bgr(image), **predict_kwargs(params, default_imgsz=64, names=model.names))[0]
    return to_annotations(result, file_name=image.name, params=params, names=model.names)


def images_of(trained, task: str) -> list[Path]:
    if task == "classify":
        return [path for path, _ in classify_images(trained.dataset_dir, 6)]
    return training_images(trained.dataset_dir, 6)


def assert_same_annotations(onnx: ImageAnnotations, torch: ImageAnnotations) -> None:
    assert [label.class_name for label in onnx.labels] == [label.class_name for label in torch.labels]
    for a, b in zip(onnx.labels, torch.labels, strict=True):
        assert a.score == pytest.approx(b.score, abs=1e-3)
    assert len(onnx.instances) == len(torch.instances)
    for a, b in zip(_ordered(onnx.instances), _ordered(torch.instances), strict=True):
        assert a.class_id == b.class_id and a.score == pytest.approx(b.score, abs=1e-3)
        assert box_iou(instance_box(a), instance_box(b)) > 0.99
        if b.polygons:
            size = dict(width=onnx.width, height=onnx.height)
            assert mask_iou(raster(a.polygons, **size), raster(b.polygons, **size)) > 0.95
        if b.keypoints:
            distances = [np.hypot(p.x - q.x, p.y - q.y) for p, q in zip(a.keypoints, b.keypoints, strict=True)]
            assert max(distances) < 0.5


def _ordered(instances: list) -> list:  # near-equal scores may swap places between the engines
    return sorted(instances, key=lambda i: (i.class_id, i.box.x1, i.box.y1))


@pytest.mark.parametrize("task", ["detect", "segment", "pose", "classify"])
def test_onnx_runtime_annotates_as_pytorch_does(task, trained_models, tmp_path) -> None:
    trained = trained_models(task)
    onnx = load_inference_model(trained.weights, Settings(data_dir=tmp_path, annotate_runtime="onnx"))
    torch = load_inference_model(trained.weights, Settings(data_dir=tmp_path, annotate_runtime="torch"))
    assert (onnx.runtime, torch.runtime) == ("onnx", "torch")
    assert onnx.names == torch.names and onnx.kpt_shape == torch.kpt_shape
    found = 0
    for image in images_of(trained, task):
        onnx_annotations, torch_annotations = annotate(onnx, image), annotate(torch, image)
        assert_same_annotations(onnx_annotations, torch_annotations)
        found += len(torch_annotations.instances) + len(torch_annotations.labels)
    assert found >= 6  # the comparison compared something


def test_the_export_is_made_once_per_weights_file_and_its_session_threads_pinned(trained_models, tmp_path) -> None:
    weights = tmp_path / "weights.pt"
    weights.write_bytes(trained_models("detect").weights.read_bytes())
    settings = Settings(data_dir=tmp_path / "data", annotate_runtime="onnx", annotate_cpu_threads=1)
    model = load_inference_model(weights, settings)
    exported = onnx_file(weights)
    first_export = exported.stat().st_mtime_ns
    session = model.yolo.predictor.model.backend.session
    assert session.get_session_options().intra_op_num_threads == cpu_threads(settings) == 1

    load_inference_model(weights, settings)
    assert exported.stat().st_mtime_ns == first_export  # reused, not exported again

    stat = weights.stat()
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # new weights at the same path
    load_inference_model(weights, settings)
    assert list(exported.parent.glob("*.onnx")) == [onnx_file(weights)]  # the stale export is gone
    assert not list(exported.parent.glob(".export-*"))  # no scratch folder left


def test_a_broken_export_falls_back_to_pytorch_with_the_reason_logged(trained_models, tmp_path, caplog) -> None:
    weights = tmp_path / "weights.pt"
    weights.write_bytes(trained_models("detect").weights.read_bytes())
    settings = Settings(data_dir=tmp_path / "data", annotate_runtime="onnx")
    onnx_file(weights).write_bytes(b"not an onnx graph")  # e.g. a disk that filled up mid-write in an older version
    with caplog.at_level(logging.WARNING, logger="imagerec.annotation.runtimes"):
        model = load_inference_model(weights, settings)
    assert model.runtime == "torch"
    assert "predicting with PyTorch" in caplog.text
    assert annotate(model, training_images(trained_models("detect").dataset_dir, 1)[0]).instances


def test_runtime_choice(tmp_path) -> None:
    import torch

    assert chosen_runtime(Settings(data_dir=tmp_path, annotate_runtime="torch")) == "torch"
    assert chosen_runtime(Settings(data_dir=tmp_path)) == ("torch" if torch.cuda.is_available() else "onnx")
    assert cpu_threads(Settings(data_dir=tmp_path)) == max(1, min(8, os.cpu_count() - 1))
