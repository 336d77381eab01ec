"""Train/test splits and training-set limits with the reference code's seeded-shuffle semantics.

The reference (PPA) code does ``indices = list(range(n)); np.random.seed(seed);
np.random.shuffle(indices)`` and takes the first ``int(0.9 * n)`` as training indices, the rest as
test. A ``np.random.RandomState(seed)`` shuffles exactly like the reseeded global generator, so the
same permutation is produced here without touching NumPy's global state.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def seeded_permutation(n: int, seed: int = 42) -> np.ndarray:
    """``0..n-1`` shuffled as ``np.random.seed(seed); np.random.shuffle(list(range(n)))`` does."""
    if n < 0:
        raise ValueError(f"n: expected a non-negative count, got {n}")
    indices = np.arange(n, dtype=np.int64)
    np.random.RandomState(seed).shuffle(indices)
    return indices


def seeded_split(n: int, test_fraction: float = 0.1, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` indices: the first ``int((1 - test_fraction) * n)`` of the seeded
    permutation are training indices, the remainder test indices (both in permutation order)."""
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction: expected a value in [0, 1), got {test_fraction}")
    indices = seeded_permutation(n, seed)
    train_count = int((1.0 - test_fraction) * n)
    return indices[:train_count], indices[train_count:]


def limit_training_set(train_indices: Sequence[int] | np.ndarray, size: int,
                       seed: int = 42) -> np.ndarray:
    """The first ``size`` entries of a seed-``seed`` permutation of ``train_indices``."""
    train_indices = np.asarray(train_indices, dtype=np.int64)
    if not 0 < size <= len(train_indices):
        raise ValueError(f"training_set_size: expected 1..{len(train_indices)} "
                         f"(the size of the training split), got {size}")
    return train_indices[seeded_permutation(len(train_indices), seed)[:size]]
