"""Focal loss (Lin et al., 2017, "Focal Loss for Dense Object Detection") for multi-class logits.

Cross-entropy is -log(p_t), p_t being the probability given to the true class. Focal loss
multiplies it by (1 - p_t)^gamma: examples the model already gets right (p_t near 1) count
little, so training concentrates on the hard ones. gamma=0 gives back cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FocalLoss", "focal_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_inputs(logits: torch.Tensor, targets: torch.Tensor, alpha: torch.Tensor | None) -> None:
    if logits.dim() != 2 or not logits.is_floating_point():
        raise ValueError(f"logits must be a float tensor of shape (N, C), got {logits.dtype} {tuple(logits.shape)}")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise ValueError(f"targets must hold class indices (int64), got {targets.dtype}; "
                         "use targets.long() (probabilities/one-hot targets are not supported)")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must have shape (N,) = ({logits.size(0)},), got {tuple(targets.shape)}")
    num_classes = logits.size(1)
    if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= num_classes):
        raise ValueError(f"targets must be in 0..{num_classes - 1} (C={num_classes}), "
                         f"got values from {int(targets.min())} to {int(targets.max())}")
    if alpha is not None and alpha.dim() > 0 and alpha.shape != (num_classes,):
        raise ValueError(f"alpha must be a number or a tensor of shape (C,) = ({num_classes},), "
                         f"got shape {tuple(alpha.shape)}")


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0,
               alpha: float | torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    """Focal loss of logits (N, C) against class indices (N,); see FocalLoss."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    alpha_t = torch.as_tensor(alpha, dtype=logits.dtype, device=logits.device) if alpha is not None else None
    _check_inputs(logits, targets, alpha_t)
    targets = targets.long()
    # log_softmax, not log(softmax): softmax of a logit of 1e4 rounds to 0 or 1, and log(0) = -inf.
    log_pt = F.log_softmax(logits, dim=1).gather(1, targets.unsqueeze(1)).squeeze(1)
    # 1 - p_t via expm1 is accurate when p_t is close to 1. The clamp keeps the gradient of
    # x^gamma finite at x = 0 when gamma < 1 (it is infinite there); it changes nothing else.
    one_minus_pt = (-torch.expm1(log_pt)).clamp(min=1e-12)
    loss = -(one_minus_pt ** gamma) * log_pt
    if alpha_t is not None:
        loss = loss * (alpha_t[targets] if alpha_t.dim() > 0 else alpha_t)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


class FocalLoss(nn.Module):
    """Focal loss for multi-class logits (N, C) and integer targets (N,).

    loss_i = -alpha_i * (1 - p_t)^gamma * log(p_t), with p_t = softmax(logits_i)[target_i].
    alpha: None (no weighting), a number (scales every term), or a tensor (C,) of per-class
    weights (alpha_i = alpha[target_i], like cross_entropy's `weight`). reduction "mean"
    divides the sum by N (not by the sum of the weights, as cross_entropy with `weight` does).
    With gamma=0 and alpha=None it equals F.cross_entropy(logits, targets).
    """

    alpha: torch.Tensor | None  # a buffer, registered in __init__

    def __init__(self, gamma: float = 2.0, alpha: float | torch.Tensor | None = None, reduction: str = "mean") -> None:
        super().__init__()
        if gamma < 0:
            raise ValueError(f"gamma must be >= 0, got {gamma}")
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.gamma = gamma
        self.reduction = reduction
        # A buffer, so that .to(device) moves the class weights along with the model.
        self.register_buffer("alpha", torch.as_tensor(alpha, dtype=torch.float32) if alpha is not None else None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return focal_loss(logits, targets, self.gamma, self.alpha, self.reduction)

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, reduction={self.reduction!r}"
