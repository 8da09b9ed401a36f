"""The device a training or its helpers run on: "auto" picks the first GPU when there is one."""

from __future__ import annotations


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def first_device(requested: str) -> str:
    """One device for a single-process step (prediction, evaluation) of a possibly multi-GPU training."""
    return resolve_device(requested).split(",")[0]
