"""Seeded split and training-set limits: the reference's np.random.seed + shuffle semantics."""

import numpy as np
import pytest

from lsmia.data.splits import limit_training_set, seeded_permutation, seeded_split


def reference_split(n, seed=42):
    """The reference code, literally: a shuffled Python list, 90 % train."""
    indices = list(range(n))
    np.random.seed(seed)
    np.random.shuffle(indices)
    train_size = int(0.9 * len(indices))
    return indices[:train_size], indices[train_size:]


@pytest.mark.parametrize("n", [1, 7, 10, 101, 1000, 4567])
def test_split_equals_reference(n):
    train, test = seeded_split(n)
    expected_train, expected_test = reference_split(n)
    assert train.tolist() == expected_train and test.tolist() == expected_test


def test_split_partitions_and_leaves_global_state_alone():
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    train, test = seeded_split(50, test_fraction=0.2, seed=3)
    assert np.array_equal(np.random.get_state()[1], before)
    assert len(train) == 40 and len(test) == 10
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(50))
    assert seeded_split(50, 0.2, 3)[0].tolist() == train.tolist()
    assert seeded_split(50, 0.2, 4)[0].tolist() != train.tolist()


def test_permutation_matches_reference_for_ndarray_and_list():
    values = np.arange(300)
    np.random.seed(42)
    np.random.shuffle(values)
    assert seeded_permutation(300).tolist() == values.tolist()


def test_bad_fraction_rejected():
    with pytest.raises(ValueError, match="test_fraction"):
        seeded_split(10, test_fraction=1.0)
    with pytest.raises(ValueError, match="n:"):
        seeded_split(-1)


def test_limit_training_set_reference_semantics():
    train, _ = seeded_split(500)
    limited = limit_training_set(train, 100)
    # reference: Subset(train) then indices = list(range(len)); seed 42; shuffle; first N
    positions = list(range(len(train)))
    np.random.seed(42)
    np.random.shuffle(positions)
    assert limited.tolist() == train[positions[:100]].tolist()
    assert len(set(limited.tolist())) == 100 and set(limited.tolist()) <= set(train.tolist())
    assert limit_training_set(train, 50).tolist() == limited[:50].tolist()  # nested sizes
    assert sorted(limit_training_set(train, len(train)).tolist()) == sorted(train.tolist())


@pytest.mark.parametrize("size", [0, -3, 451])
def test_limit_out_of_range(size):
    train, _ = seeded_split(500)
    with pytest.raises(ValueError, match="training_set_size: expected 1..450"):
        limit_training_set(train, size)
