"""Ultralytics' metric keys ("metrics/mAP50-95(B)", "train/box_loss", "lr/pg0") as stable, readable names."""

from __future__ import annotations

import math
import re
from typing import Any

_HEAD_SUFFIX = re.compile(r"^(?P<base>.+)\((?P<head>[BMP])\)$")
_HEAD_PREFIX = {"B": "", "M": "mask_", "P": "pose_"}


def _name(key: str) -> str:
    group, _, name = key.partition("/")
    if not name:
        return group
    if group == "metrics":
        match = _HEAD_SUFFIX.match(name)
        if match:
            return _HEAD_PREFIX[match["head"]] + match["base"]
        return name.removeprefix("accuracy_")  # classify: accuracy_top1 -> top1
    if group == "lr":
        return "lr" if name == "pg0" else f"lr_{name}"
    return f"{group}_{name}"  # train_box_loss, val_cls_loss …


def _number(value: Any) -> float | None:
    number = float(value)
    return number if math.isfinite(number) else None


def normalize(raw: dict[str, Any]) -> dict[str, float | None]:
    return {_name(key): _number(value) for key, value in raw.items()}


_SUMMARY = ("precision", "recall", "mAP50", "mAP50-95", "mask_mAP50-95", "pose_mAP50-95", "top1", "top5")


def summary_line(epoch: int, total: int, values: dict[str, float | None], seconds: float | None) -> str:
    def fmt(keys) -> str:
        return " ".join(f"{k} {values[k]:.4g}" for k in keys if values.get(k) is not None)

    losses = fmt(k for k in values if k.startswith("train_"))
    scores = fmt(k for k in _SUMMARY if k in values)
    parts = [f"epoch {epoch}/{total}", losses, scores, fmt(["lr"])]
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    return " | ".join(p for p in parts if p)
