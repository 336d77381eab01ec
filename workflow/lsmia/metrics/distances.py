"""Squared Euclidean distances, computed in bounded memory."""

from __future__ import annotations

import torch

#: Entries of one block of the distance matrix (float64): 2**24 is 128 MiB.
MAX_BLOCK = 1 << 24


def pairwise_sq_l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``len(a)×len(b)`` squared L2 distances in float64 (exact differences, not the
    ``‖a‖² + ‖b‖² − 2ab`` shortcut, so near-duplicates give ≈ 0 and never a negative value)."""
    a, b = _as_matrix(a, "a"), _as_matrix(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature widths differ: {a.shape[1]} and {b.shape[1]}")
    return torch.cdist(a.double(), b.double(), compute_mode="donot_use_mm_for_euclid_dist").square()


def min_sq_l2(query: torch.Tensor, reference: torch.Tensor,
              max_block: int = MAX_BLOCK) -> torch.Tensor:
    """For each query row, the smallest squared L2 distance to any reference row (blockwise)."""
    query, reference = _as_matrix(query, "query"), _as_matrix(reference, "reference")
    if len(reference) == 0:
        raise ValueError("reference: no rows to compare against")
    rows = max(1, max_block // max(1, len(reference)))
    cols = max(1, max_block // rows)
    best = torch.full((len(query),), float("inf"), dtype=torch.float64, device=query.device)
    for start in range(0, len(query), rows):
        block = best[start:start + rows]
        for ref_start in range(0, len(reference), cols):
            distances = pairwise_sq_l2(query[start:start + rows],
                                       reference[ref_start:ref_start + cols])
            torch.minimum(block, distances.min(dim=1).values, out=block)
    return best


def nearest_same_class_sq_l2(query: torch.Tensor, query_labels: torch.Tensor,
                             reference: torch.Tensor, reference_labels: torch.Tensor,
                             max_block: int = MAX_BLOCK) -> torch.Tensor:
    """Per query row, the squared L2 distance to the nearest reference row of the same label.

    Raises ``ValueError`` naming the labels of queries that have no reference of their class."""
    query, reference = _as_matrix(query, "query"), _as_matrix(reference, "reference")
    query_labels = _labels(query_labels, len(query), "query_labels")
    reference_labels = _labels(reference_labels, len(reference), "reference_labels")
    result = torch.empty(len(query), dtype=torch.float64, device=query.device)
    missing = []
    for label in torch.unique(query_labels).tolist():
        rows = query_labels == label
        own = reference[reference_labels.to(reference.device) == label]
        if len(own) == 0:
            missing.append(label)
            continue
        result[rows.to(query.device)] = min_sq_l2(query[rows.to(query.device)], own, max_block)
    if missing:
        raise ValueError(f"reference: no rows of class(es) {missing[:10]} "
                         f"({len(missing)} in all) that the queries belong to")
    return result


def _as_matrix(x: torch.Tensor, name: str) -> torch.Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2:
        raise ValueError(f"{name}: expected an N×D feature matrix, got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise FloatingPointError(f"{name}: features contain NaN or infinite values")
    return x


def _labels(labels: torch.Tensor, count: int, name: str) -> torch.Tensor:
    labels = torch.as_tensor(labels).reshape(-1).long()
    if len(labels) != count:
        raise ValueError(f"{name}: {len(labels)} labels for {count} feature rows")
    return labels
