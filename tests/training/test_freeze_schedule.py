"""Layer groups from the packaged YAMLs and the presets' epoch split: pure functions, no training."""

from __future__ import annotations

import subprocess
import sys

import pytest

from imagerec.training.layers import LayerGroups, ScheduleError, package_groups, span
from imagerec.training.schedule import PRESETS, build_schedule, split_epochs, stage_at


@pytest.mark.parametrize(("task", "backbone", "layers"), [
    ("detect", 10, 23), ("segment", 10, 23), ("pose", 10, 23), ("classify", 9, 10),
])
def test_groups_come_from_each_tasks_yaml(task, backbone, layers):
    groups = package_groups("yolov8s", task)  # the scale does not change the layer list
    assert (groups.backbone, groups.count, groups.head) == (backbone, layers, layers - 1)
    assert list(groups.named("backbone+neck")) == list(groups.named("all-but-head")) == list(range(layers - 1))


def test_unknown_architecture_has_no_groups():
    assert package_groups("my-own-net", "detect") is None


def test_reading_groups_does_not_import_torch():
    code = ("import sys; from imagerec.training.layers import package_groups; package_groups('yolov8n', 'pose'); "
            "assert 'torch' not in sys.modules and 'ultralytics' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("preset", list(PRESETS))
def test_presets_split_any_total_into_non_empty_stages(preset):
    shares = [stage.share for stage in PRESETS[preset]]
    for total in range(len(shares), 60):
        epochs = split_epochs(total, shares, preset=preset)
        assert sum(epochs) == total and min(epochs) >= 1
    with pytest.raises(ScheduleError, match="needs epochs"):
        split_epochs(len(shares) - 1, shares, preset=preset)


def test_gradual_releases_the_later_half_of_the_backbone_then_all_at_a_reduced_rate():
    groups = LayerGroups(backbone=9, count=10)  # classify
    first, second, third = build_schedule({"preset": "gradual", "epochs": 10}, groups)
    assert span(first.frozen) == "0-8" and span(second.frozen) == "0-3" and third.frozen == ()
    assert third.lr_scale < 1 == first.lr_scale
    assert [stage_at([first, second, third], epoch).number for epoch in range(11)] == \
        [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3]  # past the end: the last stage
