"""Fréchet distance between two feature sets (Heusel et al., 2017), in float64 numpy.

The same arithmetic, operation for operation, as torch-fidelity's ``fid_features_to_statistics`` and
``fid_statistics_to_metric`` (the TTUR formula), so the numbers are bit for bit torch-fidelity's
(``tests/test_metrics.py`` compares them); written here because importing torch-fidelity loads
torchvision and ``torch._dynamo``, most of a demo metrics job's time.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def frechet_distance(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """‖μa − μb‖² + Tr(Σa + Σb − 2(ΣaΣb)^½) of the Gaussians fitted to two ``N×D`` feature sets.

    The trace of the square root is the sum of the square roots of the eigenvalues of ΣaΣb (as
    complex numbers; real part). With fewer samples than dimensions the covariances are singular;
    the distance stays defined but is biased upwards, as for any FID."""
    mean_a, covariance_a = _statistics(features_a, "features_a")
    mean_b, covariance_b = _statistics(features_b, "features_b")
    if mean_a.shape != mean_b.shape:
        raise ValueError(f"feature widths differ: {mean_a.shape[0]} and {mean_b.shape[0]}")
    eigenvalues = np.linalg.eigvals(covariance_a.dot(covariance_b)).astype("complex128")
    trace_sqrt = np.sum(np.sqrt(eigenvalues).real)
    difference = mean_a - mean_b
    distance = float(difference.dot(difference) + np.trace(covariance_a) + np.trace(covariance_b)
                     - 2 * trace_sqrt)
    if not math.isfinite(distance):
        raise FloatingPointError(f"Fréchet distance is {distance}")
    return distance


def _statistics(features: torch.Tensor, name: str) -> tuple[np.ndarray, np.ndarray]:
    features = torch.as_tensor(features)
    if features.dim() != 2 or len(features) < 2:
        raise ValueError(f"{name}: expected an N×D matrix with N ≥ 2, got shape "
                         f"{tuple(features.shape)}")
    if not torch.isfinite(features).all():
        raise FloatingPointError(f"{name}: features contain NaN or infinite values")
    values = features.detach().to("cpu", torch.float64).numpy()
    return np.mean(values, axis=0), np.cov(values, rowvar=False)
