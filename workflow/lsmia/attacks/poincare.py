"""The Poincaré loss that PPA optimises: hyperbolic distance between normalised logits and a
slightly shrunk one-hot target."""

from __future__ import annotations

import torch
import torch.nn.functional as F

TARGET_SHRINK = 1e-4


def poincare_loss(
    logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
) -> torch.Tensor:
    """``arccosh(1 + 2‖u−v‖² / ((1−‖u‖²)(1−‖v‖²)))`` per sample (``"none"``) or its batch mean.

    ``u = logits / ‖logits‖₁`` per sample and ``v = clip(onehot(target) − 1e-4, 0, 1)``.
    Computed in float32 whatever the input dtype (autocast gives bf16 logits).
    """
    if logits.dim() != 2:
        raise ValueError(f"poincare_loss: logits must be N×C, got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(
            f"poincare_loss: targets must have shape ({logits.shape[0]},), "
            f"got {tuple(targets.shape)}"
        )
    if reduction not in ("mean", "none"):
        raise ValueError(f"poincare_loss: reduction must be 'mean' or 'none', got {reduction!r}")
    logits = logits.float()
    u = logits / logits.abs().sum(dim=1, keepdim=True)
    v = (F.one_hot(targets, logits.shape[1]).float() - TARGET_SHRINK).clamp(0, 1)
    squared_distance = (u - v).square().sum(dim=1)
    u_term = 1 - u.square().sum(dim=1)
    v_term = 1 - v.square().sum(dim=1)
    loss = torch.acosh(1 + 2 * squared_distance / (u_term * v_term))
    return loss.mean() if reduction == "mean" else loss
