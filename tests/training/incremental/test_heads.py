"""Head expansion is exact: before any training, the widened model's old-class outputs are the base model's."""

from __future__ import annotations

import pytest
import torch

from imagerec.training.incremental.heads import class_count, class_layers, widened


def _model(task: str, nc: int):
    from ultralytics.nn.tasks import ClassificationModel, DetectionModel, PoseModel, SegmentationModel

    built = {
        "detect": lambda: DetectionModel("yolov8n.yaml", nc=nc, verbose=False),
        "segment": lambda: SegmentationModel("yolov8n-seg.yaml", nc=nc, verbose=False),
        "pose": lambda: PoseModel("yolov8n-pose.yaml", nc=nc, data_kpt_shape=(3, 3), verbose=False),
        "classify": lambda: ClassificationModel("yolov8n-cls.yaml", nc=nc, verbose=False),
    }[task]()
    for module in built.modules():  # non-trivial BN statistics, as a trained model has
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
    return built.eval()


def _head_outputs(task: str, model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    if task == "classify":
        return out[1]  # the logits
    decoded = out[0]
    return decoded[0] if isinstance(decoded, tuple) else decoded  # segment: (predictions, prototypes)


@pytest.mark.parametrize("task", ["detect", "segment", "pose", "classify"])
def test_widened_model_answers_like_the_base_on_old_classes(task: str) -> None:
    torch.manual_seed(0)
    base = _model(task, nc=2)
    wide = widened(base, 4).eval()
    assert class_count(base) == 2 and class_count(wide) == 4
    x = torch.rand(2, 3, 64, 64)
    before, after = _head_outputs(task, base, x), _head_outputs(task, wide, x)
    if task == "classify":
        torch.testing.assert_close(after[:, :2], before, rtol=0, atol=1e-5)
        return
    # decoded rows: 4 box values, then the class scores (then mask coefficients or keypoints)
    torch.testing.assert_close(after[:, :4], before[:, :4], rtol=0, atol=1e-4)
    torch.testing.assert_close(after[:, 4:6], before[:, 4:6], rtol=0, atol=1e-5)
    torch.testing.assert_close(after[:, 8:], before[:, 6:], rtol=0, atol=1e-4)


def test_new_class_rows_get_the_heads_bias_prior() -> None:
    torch.manual_seed(0)
    base = _model("detect", nc=2)
    with torch.no_grad():
        for layer in class_layers(base):
            layer.bias.fill_(3.0)  # a trained model's old-class biases, far from the prior
    wide = widened(base, 3)
    head = wide.model[-1]
    for level, layer in enumerate(class_layers(wide)):
        prior = torch.log(torch.tensor(5 / 3 / (640 / head.stride[level]) ** 2))
        assert torch.all(layer.bias[:2] == 3.0)
        assert torch.isclose(layer.bias[2], prior)


def test_widening_never_narrows() -> None:
    with pytest.raises(ValueError, match="narrow"):
        widened(_model("detect", nc=3), 2)
