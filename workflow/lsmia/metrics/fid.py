"""Fréchet distance between two feature sets, through torch-fidelity's implementation."""

from __future__ import annotations

import math

import torch

# torch_fidelity is imported where it is used: it loads torchvision (and torch._dynamo), ~1.5 s of
# every metrics job's start-up otherwise.


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) of the Gaussians fitted to two ``N×D`` feature sets.

    Statistics and distance are torch-fidelity's (``fid_features_to_statistics``,
    ``fid_statistics_to_metric``), computed in float64. With fewer samples than dimensions the
    covariances are singular; the distance stays defined but is biased upwards, as for any FID."""
    from torch_fidelity.metric_fid import KEY_METRIC_FID, fid_statistics_to_metric

    statistics = [_statistics(features, name)
                  for features, name in ((features_a, "features_a"), (features_b, "features_b"))]
    if statistics[0]["mu"].shape != statistics[1]["mu"].shape:
        raise ValueError(f"feature widths differ: {statistics[0]['mu'].shape[0]} and "
                         f"{statistics[1]['mu'].shape[0]}")
    distance = fid_statistics_to_metric(*statistics, verbose=False)[KEY_METRIC_FID]
    if not math.isfinite(distance):
        raise FloatingPointError(f"Fréchet distance is {distance}")
    return distance


def _statistics(features: torch.Tensor, name: str) -> dict:
    features = torch.as_tensor(features)
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(f"{name}: expected an N×D matrix with N ≥ 2, got shape "
                         f"{tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise FloatingPointError(f"{name}: features contain NaN or infinite values")
    from torch_fidelity.metric_fid import fid_features_to_statistics

    return fid_features_to_statistics(features.detach().to("cpu", torch.float64))
