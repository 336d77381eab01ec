"""The utility–privacy Pareto front (defence comparison: its table column and its figure)."""

from __future__ import annotations

import numpy as np


def pareto_front(points) -> np.ndarray:
    """Indices of the points (utility, Acc@1) that no other point dominates, for maximising
    utility and minimising Acc@1, ordered by increasing Acc@1. A point is dominated when another is
    at least as good in both and strictly better in one (equal points do not dominate each
    other)."""
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"expected N×2 points (utility, Acc@1), got shape {points.shape}")
    if not np.isfinite(points).all():
        raise ValueError("pareto_front: points must be finite")
    utility, leak = points[:, 0], points[:, 1]
    front = [
        i
        for i in range(len(points))
        if not np.any(
            (utility >= utility[i])
            & (leak <= leak[i])
            & ((utility > utility[i]) | (leak < leak[i]))
        )
    ]
    return np.array(sorted(front, key=lambda i: (leak[i], -utility[i])), dtype=np.int64)
