"""Ultralytics results → annotations, measured against the shapes drawn in the models' training images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from imagerec.annotation.predictions import (
    check_shapes,
    predict_kwargs,
    resolve_classes,
    shapes_for_task,
    to_annotations,
)
from imagerec.annotation.schemas import AnnotateParams, Shape
from imagerec.config import Settings
from imagerec.errors import Unprocessable
from imagerec.training import ultralytics_env
from tests.annotation.drawn import (
    Predictors,
    classify_images,
    drawn_objects,
    mask_iou,
    match,
    raster,
    training_images,
)

pytestmark = pytest.mark.training
IMAGES = 12
NAMES = {0: "square", 1: "circle", 2: "triangle"}


@pytest.fixture(scope="module")
def predictors(trained_models) -> Predictors:
    return Predictors(trained_models)


def annotated(predictors: Predictors, task: str, params: AnnotateParams | None = None, **kwargs):
    """(image path, drawn objects, annotations) for the first training images of ``task``."""
    dataset_dir = predictors.trained_models(task).dataset_dir
    return [(path, drawn_objects(path, task=task), predictors.annotate(task, path, params, **kwargs))
            for path in training_images(dataset_dir, IMAGES)]


def assert_found_most(samples, *, at_least: float) -> list:
    """Most drawn objects have a prediction of the right class over them; returns the matched pairs."""
    pairs = [pair for _, objects, annotations in samples for pair in match(objects, annotations.instances)]
    right = [(drawn, found) for drawn, found in pairs if found is not None and found.class_id == drawn.class_id]
    assert len(right) >= at_least * len(pairs), f"{len(right)} of {len(pairs)} drawn objects found"
    return right


# --- real models ----------------------------------------------------------------------------------------------

def test_detect_boxes_land_on_the_drawn_shapes(predictors):
    samples = annotated(predictors, "detect")
    assert_found_most(samples, at_least=0.75)
    for _, _, found in samples:
        scores = [i.score for i in found.instances]
        assert scores == sorted(scores, reverse=True)
        for instance in found.instances:
            box = instance.box
            assert 0 <= box.x1 <= box.x2 <= found.width and 0 <= box.y1 <= box.y2 <= found.height
            assert box.cx == pytest.approx((box.x1 + box.x2) / 2 / found.width)
            assert box.w == pytest.approx((box.x2 - box.x1) / found.width)
            assert instance.class_name == NAMES[instance.class_id]
            assert instance.polygons is None and instance.keypoints is None


def test_segment_polygons_cover_the_drawn_shapes(predictors):
    samples = annotated(predictors, "segment")
    right = assert_found_most(samples, at_least=0.75)
    width, height = samples[0][2].width, samples[0][2].height
    ious = [mask_iou(raster([drawn.polygon], width=width, height=height),
                     raster(found.polygons, width=width, height=height)) for drawn, found in right]
    assert np.median(ious) >= 0.7, ious
    assert min(ious) >= 0.4, ious
    for _, found in right:
        assert found.polygons and all(len(polygon) >= 3 for polygon in found.polygons)
        xs = [x for polygon in found.polygons for x, _ in polygon]
        assert 0 <= min(xs) and max(xs) <= width


def test_pose_keypoints_land_on_the_triangle_corners(predictors):
    samples = annotated(predictors, "pose", kpt_names=["top", "left", "right"])
    right = assert_found_most(samples, at_least=0.8)
    distances = []
    for drawn, found in right:
        assert [k.name for k in found.keypoints] == ["top", "left", "right"]
        distances += [float(np.hypot(k.x - drawn.keypoints[k.index][0], k.y - drawn.keypoints[k.index][1]))
                      for k in found.keypoints]
    assert np.median(distances) <= 3.0, distances
    assert np.percentile(distances, 90) <= 6.0, distances


def test_classify_top1_is_the_drawn_shape(predictors):
    images = classify_images(predictors.trained_models("classify").dataset_dir, IMAGES)
    results = [(predictors.annotate("classify", path, AnnotateParams(top_k=2)), kind) for path, kind in images]
    right = sum(annotations.labels[0].class_name == kind for annotations, kind in results)
    assert right >= 0.8 * len(results), [(a.labels[0].class_name, kind) for a, kind in results]
    for found, _ in results:
        assert len(found.labels) == 2 and not found.instances
        assert found.labels[0].score >= found.labels[1].score


# --- parameters, on real predictions --------------------------------------------------------------------------

def test_classes_filter_keeps_only_the_named_classes(predictors):
    samples = annotated(predictors, "detect", AnnotateParams(classes=["circle", "2"], conf=0.05))
    classes = {i.class_name for _, _, annotations in samples for i in annotations.instances}
    assert classes and classes <= {"circle", "triangle"}


def test_classes_filter_narrows_classification_labels(predictors):
    path, _ = classify_images(predictors.trained_models("classify").dataset_dir, 1)[0]
    annotations = predictors.annotate("classify", path, AnnotateParams(classes=["square"]))
    assert [label.class_name for label in annotations.labels] == ["square"]


def test_shapes_bbox_on_a_segment_model_gives_boxes_only(predictors):
    samples = annotated(predictors, "segment", AnnotateParams(shapes=[Shape.bbox]))
    instances = [i for _, _, annotations in samples for i in annotations.instances]
    assert instances and all(i.box is not None and i.polygons is None for i in instances)


def test_shapes_keypoints_on_a_pose_model_gives_points_without_boxes(predictors):
    samples = annotated(predictors, "pose", AnnotateParams(shapes=[Shape.keypoints]))
    instances = [i for _, _, annotations in samples for i in annotations.instances]
    assert instances and all(i.box is None and i.keypoints for i in instances)


def test_conf_drops_weak_instances(predictors):
    loose = annotated(predictors, "detect", AnnotateParams(conf=0.05))
    strict = annotated(predictors, "detect", AnnotateParams(conf=0.6))
    loose_scores = [i.score for _, _, a in loose for i in a.instances]
    strict_scores = [i.score for _, _, a in strict for i in a.instances]
    assert all(score >= 0.6 for score in strict_scores)
    assert len(strict_scores) < len(loose_scores)


def test_max_det_bounds_instances_per_image(predictors):
    samples = annotated(predictors, "detect", AnnotateParams(max_det=1, conf=0.05))
    assert all(len(annotations.instances) == 1 for _, _, annotations in samples)


def test_keypoint_conf_drops_weak_keypoints(predictors):
    every = [k for _, _, a in annotated(predictors, "pose") for i in a.instances for k in i.keypoints]
    threshold = float(np.median([k.conf for k in every]))
    kept = [k for _, _, a in annotated(predictors, "pose", AnnotateParams(keypoint_conf=threshold))
            for i in a.instances for k in i.keypoints]
    assert kept and len(kept) < len(every)
    assert all(k.conf >= threshold for k in kept)


# --- hand-made results ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def results_class(tmp_path_factory):
    """Ultralytics' Results class, imported only once it is configured offline."""
    ultralytics_env.configure(Settings(data_dir=tmp_path_factory.mktemp("ultralytics-home")))
    from ultralytics.engine.results import Results

    return Results


def two_part_result(results_class):
    """One instance whose mask is two separate blobs (an object cut in two by something in front of it)."""
    mask = torch.zeros((1, 48, 64))
    mask[0, 4:16, 4:20] = 1  # left blob, 16x12 px at full size
    mask[0, 30:44, 40:60] = 1  # right blob, larger
    image = np.zeros((48, 64, 3), np.uint8)
    boxes = torch.tensor([[4.0, 4.0, 60.0, 44.0, 0.9, 1.0]])
    return results_class(image, path="two.png", names=NAMES, boxes=boxes, masks=mask)


def test_a_mask_in_two_parts_gives_two_polygons(results_class):
    result = two_part_result(results_class)
    annotations = to_annotations(result, file_name="two.png", params=AnnotateParams(), names=NAMES)
    (instance,) = annotations.instances
    assert len(instance.polygons) == 2
    right, left = (raster([polygon], width=64, height=48) for polygon in instance.polygons)  # largest first
    assert right[30:44, 40:60].all() and right.sum() == 14 * 20
    assert left[4:16, 4:20].all() and left.sum() == 12 * 16
    assert len(result.masks.xy) == 1  # what Ultralytics' own polygons would have given: one


def test_masks_at_model_resolution_are_scaled_to_the_image(results_class):
    """Masks come at the model's input size (no retina_masks): the polygons must still land right."""
    result = two_part_result(results_class)
    small = torch.nn.functional.interpolate(result.masks.data[None], size=(24, 32), mode="nearest")[0]
    scaled = results_class(result.orig_img, path="two.png", names=NAMES, boxes=result.boxes.data, masks=small)
    (instance,) = to_annotations(scaled, file_name="two.png", params=AnnotateParams(), names=NAMES).instances
    assert len(instance.polygons) == 2
    assert mask_iou(raster(instance.polygons, width=64, height=48), result.masks.data[0].numpy() > 0) >= 0.8


def test_letterboxed_masks_are_mapped_back_past_the_padding(results_class):
    """A 64x48 image predicted at 64x64: Ultralytics pads 8 rows above and below; polygons must not shift."""
    result = two_part_result(results_class)
    padded = torch.zeros((1, 64, 64))
    padded[0, 8:56] = result.masks.data[0]
    boxed = results_class(result.orig_img, path="two.png", names=NAMES, boxes=result.boxes.data, masks=padded)
    (instance,) = to_annotations(boxed, file_name="two.png", params=AnnotateParams(), names=NAMES).instances
    assert mask_iou(raster(instance.polygons, width=64, height=48), result.masks.data[0].numpy() > 0) == 1.0


def test_polygon_tolerance_simplifies(results_class):
    mask = torch.zeros((1, 48, 64))
    yy, xx = np.mgrid[:48, :64]
    mask[0] = torch.from_numpy(((xx - 32) ** 2 + (yy - 24) ** 2 <= 18**2).astype(np.float32))
    result = results_class(np.zeros((48, 64, 3), np.uint8), path="c.png", names=NAMES,
                     boxes=torch.tensor([[14.0, 6.0, 50.0, 42.0, 0.8, 1.0]]), masks=mask)
    fine, coarse = (to_annotations(result, file_name="c.png", params=AnnotateParams(polygon_tolerance=t),
                                   names=NAMES).instances[0].polygons[0] for t in (0.5, 4.0))
    assert len(coarse) < len(fine)


def test_boxes_are_clamped_into_the_image(results_class):
    boxes = torch.tensor([[-5.0, -3.0, 70.0, 50.0, 0.7, 0.0], [10.0, 10.0, 20.0, 20.0, 0.9, 2.0]])
    result = results_class(np.zeros((48, 64, 3), np.uint8), path="b.png", names=NAMES, boxes=boxes)
    first, second = to_annotations(result, file_name="b.png", params=AnnotateParams(), names=NAMES).instances
    assert first.score == pytest.approx(0.9)  # strongest first
    assert (second.box.x1, second.box.y1, second.box.x2, second.box.y2) == (0, 0, 64, 48)
    assert (second.box.cx, second.box.cy, second.box.w, second.box.h) == (0.5, 0.5, 1.0, 1.0)


# --- request checks ---------------------------------------------------------------------------------------------

def test_resolve_classes_by_name_id_or_comma_list():
    assert resolve_classes(["triangle", "0"], NAMES) == [0, 2]
    assert resolve_classes(["Circle,square"], NAMES) == [0, 1]
    assert resolve_classes(None, NAMES) is None


def test_unknown_class_is_named_in_the_error():
    with pytest.raises(Unprocessable, match="'hexagon'"):
        resolve_classes(["circle", "hexagon"], NAMES)
    with pytest.raises(Unprocessable, match="'7'"):
        resolve_classes(["7"], NAMES)


@pytest.mark.parametrize(("shape", "task", "needs"), [
    (Shape.polygon, "detect", "segment"),
    (Shape.keypoints, "segment", "pose"),
    (Shape.label, "detect", "classify"),
    (Shape.bbox, "classify", "detect"),
])
def test_a_shape_the_model_cannot_produce_is_refused(shape, task, needs):
    with pytest.raises(Unprocessable, match=f"a {task} model cannot produce '{shape}'.*needs a {needs} model"):
        check_shapes([shape], task)


def test_shapes_a_model_can_produce_pass():
    check_shapes(None, "detect")
    check_shapes([Shape.bbox, Shape.polygon], "segment")
    assert shapes_for_task("pose") == {Shape.bbox, Shape.keypoints}
    with pytest.raises(Unprocessable):
        shapes_for_task("obb")


def test_predict_kwargs():
    kwargs = predict_kwargs(AnnotateParams(conf=0.4, max_det=7, classes=["circle"]), default_imgsz=64, names=NAMES)
    assert kwargs["classes"] == [1] and kwargs["retina_masks"] is False
    assert (kwargs["conf"], kwargs["max_det"], kwargs["imgsz"], kwargs["verbose"]) == (0.4, 7, 64, False)
    assert predict_kwargs(AnnotateParams(imgsz=320), default_imgsz=64)["imgsz"] == 320
