"""Widening a trained model to more classes without touching what it already knows.

The widened model starts as Ultralytics builds any model for the merged class count (new class rows get the head's
usual bias prior from ``Detect.bias_init``, new weights the default init); then every tensor of the base model whose
name and shape match is loaded, and each class layer gets the base's rows for the old classes. Before any training
the widened model's old-class outputs are the base model's.
"""

from __future__ import annotations

import torch
from torch import nn


def class_layers(model: nn.Module) -> list[nn.Module]:
    """The layers whose output rows are classes: the last conv of every class branch of a detection-family head
    (both branches of an end-to-end head), or the final linear layer of a classification head."""
    head = model.model[-1]
    if hasattr(head, "linear"):
        return [head.linear]
    branches = [head.cv3]
    if getattr(head, "one2one_cv3", None) is not None:
        branches.append(head.one2one_cv3)
    return [branch[-1] for branch_list in branches for branch in branch_list]


def class_count(model: nn.Module) -> int:
    return _out_rows(class_layers(model)[0])


def _out_rows(layer: nn.Module) -> int:
    return layer.weight.shape[0]


def transfer_weights(model: nn.Module, base: nn.Module, *, verbose: bool = False) -> None:
    """Everything of ``base`` into ``model`` (built for at least as many classes)."""
    model.load(base, verbose=verbose)  # Ultralytics' own transfer: every tensor whose name and shape match
    for new, old in zip(class_layers(model), class_layers(base), strict=True):
        rows = _out_rows(old)
        if rows > _out_rows(new):
            raise ValueError(f"cannot narrow a class layer from {rows} to {_out_rows(new)} classes")
        with torch.no_grad():
            new.weight[:rows].copy_(old.weight)
            if old.bias is not None:
                new.bias[:rows].copy_(old.bias)


def widened(base: nn.Module, class_total: int) -> nn.Module:
    """A new model of ``base``'s architecture for ``class_total`` classes, carrying all of ``base``."""
    model = type(base)(base.yaml, nc=class_total, verbose=False)
    transfer_weights(model, base)
    return model


class WidenHeadTrainerMixin:
    """Trainer mixin: the model Ultralytics trains is the widened base (on resume, the checkpoint as it is)."""

    merged_names: list[str] | None = None  # classify: the class names in merged order (folders carry a prefix)

    def get_model(self, cfg=None, weights=None, verbose=True):
        model = super().get_model(cfg=cfg, weights=None, verbose=verbose)
        if weights is not None:
            transfer_weights(model, weights)
        return model

    def get_dataset(self):
        data = super().get_dataset()
        if self.merged_names is not None:  # sorted prefixed folders give the ids; the names shown are the real ones
            data["names"] = dict(enumerate(self.merged_names))
        return data
