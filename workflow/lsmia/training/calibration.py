"""Expected calibration error of a classifier's confidences."""

from __future__ import annotations

import numpy as np
import torch


def expected_calibration_error(probs: torch.Tensor | np.ndarray, labels: torch.Tensor | np.ndarray,
                               n_bins: int = 15) -> float:
    """ECE over ``n_bins`` equal-width confidence bins ``(k/n, (k+1)/n]`` (confidence 0 falls into
    the first): ``Σ_b |b|/N · |accuracy(b) − mean confidence(b)|``, on each sample's maximum
    probability and its arg-max prediction."""
    probs = torch.as_tensor(probs, dtype=torch.float64)
    labels = torch.as_tensor(labels)
    if probs.dim() != 2 or labels.shape != probs.shape[:1] or len(labels) == 0:
        raise ValueError(f"expected non-empty N×C probabilities and N labels, got "
                         f"{tuple(probs.shape)} and {tuple(labels.shape)}")
    if not torch.isfinite(probs).all():
        bad = int((~torch.isfinite(probs)).any(dim=1).sum())
        raise ValueError(f"expected finite probabilities; {bad} of {len(probs)} rows are not "
                         f"(NaN or inf logits from the model)")
    if n_bins < 1:
        raise ValueError(f"n_bins: expected a positive integer, got {n_bins}")
    confidence, prediction = probs.max(dim=1)
    correct = (prediction == labels).double()
    bins = (torch.ceil(confidence * n_bins).long() - 1).clamp(0, n_bins - 1)
    gap = (torch.bincount(bins, weights=correct, minlength=n_bins)
           - torch.bincount(bins, weights=confidence, minlength=n_bins)).abs()
    return float(gap.sum() / len(labels))
