"""Precision, recall, density and coverage (Naeem et al., ICML 2020) with k-NN balls.

The published definitions, for real samples X (N) and fakes Y (M), with r_k(x) the distance from x
to its k-th nearest neighbour in its own set (itself excluded):

- precision = 1/M Σ_j 1[∃ i: ‖Y_j − X_i‖ < r_k(X_i)]
- recall    = 1/N Σ_i 1[∃ j: ‖X_i − Y_j‖ < r_k(Y_j)]
- density   = 1/(k M) Σ_j Σ_i 1[‖Y_j − X_i‖ < r_k(X_i)]
- coverage  = 1/N Σ_i 1[min_j ‖X_i − Y_j‖ < r_k(X_i)]

(strict inequalities, as the authors' ``prdc`` package). The PPA reference code
(``metrics/prcd.py``, read in a public fork) differs, and this module does not copy it: (1) its
class filter is ``if cls:``, so class 0 is not filtered and is compared with all classes' images;
(2) density sums the hits over fakes and averages over the *real* samples, i.e. divides by the
number of real samples instead of fakes; (3) precision and recall test only the ball of the nearest
neighbour, not any ball, and use ``<=``. All of these change the values.

Written on ``torch.cdist`` rather than depending on the ``prdc`` package (one release, 2020, numpy +
scikit-learn): a few lines, device-agnostic, and it shares ``pairwise_sq_l2`` with the distances.
"""

from __future__ import annotations

import torch

from lsmia.metrics.distances import pairwise_sq_l2

KEYS = ("precision", "recall", "density", "coverage")


def kth_neighbour_sq_radius(features: torch.Tensor, k: int) -> torch.Tensor:
    """Squared distance from each row to its k-th nearest other row."""
    if len(features) <= k:
        raise ValueError(f"need more than k={k} samples for k-NN radii, got {len(features)}")
    distances = pairwise_sq_l2(features, features)
    distances.fill_diagonal_(float("inf"))
    return distances.topk(k, dim=1, largest=False).values[:, -1]


def prdc(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict:
    """Precision, recall, density and coverage of ``fake`` against ``real`` (``N×D``, ``M×D``)."""
    if k < 1:
        raise ValueError(f"k: expected a positive integer, got {k}")
    real_radius = kth_neighbour_sq_radius(real, k)
    fake_radius = kth_neighbour_sq_radius(fake, k)
    distances = pairwise_sq_l2(real, fake)  # N×M
    inside_real = distances < real_radius[:, None]
    return {
        "precision": float(inside_real.any(dim=0).double().mean()),
        "recall": float((distances < fake_radius[None, :]).any(dim=1).double().mean()),
        "density": float(inside_real.sum(dim=0).double().mean() / k),
        "coverage": float((distances.min(dim=1).values < real_radius).double().mean()),
    }


def prdc_per_class(real: torch.Tensor, real_labels: torch.Tensor, fake: torch.Tensor,
                   fake_labels: torch.Tensor, k: int = 3) -> dict:
    """``prdc`` within each class of ``fake_labels`` (against the real rows of that class), averaged
    over those classes with equal weight. Every class needs more than ``k`` real and fake rows."""
    real_labels = torch.as_tensor(real_labels).reshape(-1).to(real.device)
    fake_labels = torch.as_tensor(fake_labels).reshape(-1).to(fake.device)
    if len(real_labels) != len(real) or len(fake_labels) != len(fake):
        raise ValueError(f"labels: {len(real_labels)} for {len(real)} real rows and "
                         f"{len(fake_labels)} for {len(fake)} fake rows")
    totals = dict.fromkeys(KEYS, 0.0)
    classes = torch.unique(fake_labels).tolist()
    if not classes:
        raise ValueError("fake: no samples")
    for label in classes:
        try:
            scores = prdc(real[real_labels == label], fake[fake_labels == label], k)
        except ValueError as err:
            raise ValueError(f"class {label}: {err}") from err
        for key in KEYS:
            totals[key] += scores[key]
    return {key: value / len(classes) for key, value in totals.items()}
