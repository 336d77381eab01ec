"""Top-k accuracy of logits against integer labels."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict:
    """``{"acc1": …, "acc5": …}``: the fraction of rows whose label is among the ``k`` largest
    logits.

    Ties count against the label only when more than ``k`` other classes score strictly higher, so
    a row of equal logits is a hit (as ``torch.topk`` would not guarantee)."""
    return {key: float(hits.float().mean()) for key, hits in topk_hits(logits, labels, ks).items()}


def topk_hits(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict:
    """``{"acc1": bool tensor, …}``: per row, whether its label is among the ``k`` largest logits
    (the rule of ``topk_accuracy``)."""
    if logits.dim() != 2:
        raise ValueError(f"logits: expected N×C, got shape {tuple(logits.shape)}")
    labels = torch.as_tensor(labels, device=logits.device).reshape(-1).long()
    if len(labels) != len(logits) or len(labels) == 0:
        raise ValueError(f"labels: expected {len(logits)} labels (one per row, at least one), "
                         f"got {len(labels)}")
    num_classes = logits.shape[1]
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"labels: expected values in [0, {num_classes}), "
                         f"got {labels.min().item()}..{labels.max().item()}")
    bad = [k for k in ks if not 1 <= k <= num_classes]
    if bad:
        raise ValueError(f"ks: {bad} outside 1..{num_classes} (the number of classes)")
    if not torch.isfinite(logits).all():
        raise FloatingPointError("logits: contain NaN or infinite values")
    own = logits.gather(1, labels[:, None])
    higher = (logits > own).sum(dim=1)
    return {f"acc{k}": higher < k for k in ks}
