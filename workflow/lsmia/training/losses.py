"""The label-smoothing loss for positive and negative smoothing factors α."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def label_smoothing_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float) -> torch.Tensor:
    """Cross-entropy against ``(1 − α)·onehot(y) + α/C``, averaged over the batch.

    α ≥ 0 is ``F.cross_entropy(logits, targets, label_smoothing=α)``. α < 0 (negative label
    smoothing) is, per sample, ``(1 − α)·(−log p_y) + α·mean_c(−log p_c)``; the batch mean can be
    negative. Computed in float32 whatever the logits' dtype. α > 1 is rejected.
    """
    alpha = float(alpha)
    if not alpha <= 1.0:
        raise ValueError(f"alpha: label smoothing needs α ≤ 1, got {alpha}")
    if logits.dim() != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"expected N×C logits and N targets, got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    logits = logits.float()
    if alpha >= 0.0:
        return F.cross_entropy(logits, targets, label_smoothing=alpha)
    log_probs = F.log_softmax(logits, dim=1)
    target_term = -log_probs.gather(1, targets[:, None]).squeeze(1)
    uniform_term = -log_probs.mean(dim=1)
    return ((1.0 - alpha) * target_term + alpha * uniform_term).mean()
