"""Flip consistency, after consistency-based detection (CSD, Jeong et al., NeurIPS 2019).

The student also sees the horizontally flipped batch; its outputs are flipped back and pulled toward its outputs
on the original images. The exact form used here:

- flip back, per head level: the score and box maps of each level are reshaped to (H, W) and reversed along W
  (with a stride-s grid over an image of width W·s, column j of the flipped image is column W−1−j of the
  original: the anchors line up exactly); for the DFL box distributions the *left* and *right* side
  distributions are also swapped (top and bottom stay);
- targets are the original-image outputs, detached (as in the Π-model / mean-teacher family), so the gradient
  flows through the flipped pass only and the term cannot collapse both passes together;
- class scores: binary KL between the per-class sigmoid probabilities (CSD uses a Jensen–Shannon divergence of
  softmax scores; sigmoid scores are what YOLOv8 predicts); box distributions: KL of each side's DFL
  distribution (CSD uses an L2 on box offsets; YOLOv8 regresses distributions);
- background elimination (CSD §3.3): both parts are weighted per anchor by the original pass's highest class
  probability and normalised by its sum, so the vast background does not dominate.

Classify: KL between the softmax of the original logits (detached) and of the flipped image's logits.
Segment and pose: the same as detect on their scores and boxes (mask coefficients and keypoints are left out:
keypoints would need the dataset's flip_idx, and both are fitted by the model's own loss).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from imagerec.training.distill.criterion import DistillInputs, head_outputs
from imagerec.training.distill.terms import binary_kl

LEFT_RIGHT = [2, 1, 0, 3]  # DFL sides are (left, top, right, bottom) distances from the anchor


def flip_back(flat: torch.Tensor, level_shapes: list[tuple[int, int]]) -> torch.Tensor:
    """(B, C, A) anchors of all levels → the same tensor with every level's map reversed along W."""
    sizes = [h * w for h, w in level_shapes]
    levels = []
    for part, (h, w) in zip(flat.split(sizes, dim=-1), level_shapes):
        levels.append(part.reshape(*part.shape[:-1], h, w).flip(-1).reshape(part.shape))
    return torch.cat(levels, dim=-1)


def flip_back_boxes(boxes: torch.Tensor, level_shapes: list[tuple[int, int]], reg_max: int) -> torch.Tensor:
    batch, _, anchors = boxes.shape
    sides = flip_back(boxes, level_shapes).view(batch, 4, reg_max, anchors)
    return sides[:, LEFT_RIGHT].reshape(batch, 4 * reg_max, anchors)


class FlipConsistency(nn.Module):
    name = "consistency"

    def __init__(self, *, weight: float, classify: bool, reg_max: int = 16) -> None:
        super().__init__()
        self.weight, self.classify, self.reg_max = weight, classify, reg_max

    def forward(self, inputs: DistillInputs) -> torch.Tensor:
        if self.weight == 0:
            return inputs.batch["img"].new_zeros(())
        flipped = head_outputs(inputs.student_model(inputs.batch["img"].flip(-1)))
        if self.classify:
            return self.weight * self._classify(inputs.student.detach(), flipped)
        return self.weight * self._detect(inputs.student, flipped)

    @staticmethod
    def _classify(original: torch.Tensor, flipped: torch.Tensor) -> torch.Tensor:
        return F.kl_div(F.log_softmax(flipped, dim=1), F.log_softmax(original, dim=1), log_target=True,
                        reduction="batchmean")

    def _detect(self, original: dict, flipped: dict) -> torch.Tensor:
        shapes = [tuple(feat.shape[-2:]) for feat in flipped["feats"]]
        target_scores = original["scores"].detach()
        scores = flip_back(flipped["scores"], shapes)
        weight = target_scores.sigmoid().amax(dim=1)  # (B, A): background elimination
        normaliser = weight.sum().clamp(min=1.0)
        score_term = (binary_kl(scores, target_scores, 1.0).sum(dim=1) * weight).sum() / normaliser

        batch, _, anchors = scores.shape
        shape = (batch, 4, self.reg_max, anchors)
        log_target = F.log_softmax(original["boxes"].detach().view(shape), dim=2)
        log_flipped = F.log_softmax(flip_back_boxes(flipped["boxes"], shapes, self.reg_max).view(shape), dim=2)
        per_anchor = (log_target.exp() * (log_target - log_flipped)).sum(dim=2).sum(dim=1)
        box_term = (per_anchor * weight).sum() / normaliser
        return score_term + box_term
