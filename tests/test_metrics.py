"""Metric primitives: top-k accuracy, nearest-neighbour distances, FID, PRDC, identity leakage."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from lsmia.metrics.accuracy import topk_accuracy
from lsmia.metrics.distances import min_sq_l2, nearest_same_class_sq_l2, pairwise_sq_l2
from lsmia.metrics.fid import frechet_distance
from lsmia.metrics.leakage import identity_leakage
from lsmia.metrics.per_class import per_class_means
from lsmia.metrics.prdc import prdc, prdc_per_class
from scipy import linalg


def test_topk_accuracy_on_constructed_logits():
    logits = torch.tensor([
        [9.0, 1, 2, 3, 4, 5],   # label 0: rank 1
        [1.0, 9, 8, 7, 6, 5],   # label 5: rank 5
        [1.0, 2, 3, 4, 5, 6],   # label 0: rank 6
        [2.0, 2, 2, 2, 2, 2],   # label 3: all tied, counts as rank 1
    ])
    labels = torch.tensor([0, 5, 0, 3])
    assert topk_accuracy(logits, labels) == {"acc1": 0.5, "acc5": 0.75}
    assert topk_accuracy(logits, labels, ks=(6,)) == {"acc6": 1.0}


@pytest.mark.parametrize("bad", [
    {"labels": torch.tensor([0, 1])},           # wrong count
    {"labels": torch.tensor([0, 1, 2, 6])},     # label out of range
    {"ks": (7,)},                               # k above the number of classes
])
def test_topk_accuracy_rejects_bad_input(bad):
    arguments = {"logits": torch.zeros(4, 6), "labels": torch.tensor([0, 1, 2, 3]), "ks": (1, 5)}
    arguments.update(bad)
    with pytest.raises(ValueError):
        topk_accuracy(**arguments)


def test_topk_accuracy_rejects_nan_logits():
    with pytest.raises(FloatingPointError):
        topk_accuracy(torch.tensor([[0.0, float("nan")]]), torch.tensor([0]), ks=(1,))


def test_nearest_same_class_on_hand_made_embeddings():
    query = torch.tensor([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0]])
    query_labels = torch.tensor([0, 1, 0])
    reference = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 5.5], [3.0, 4.0], [10.0, 10.0]])
    reference_labels = torch.tensor([0, 0, 1, 0, 1])
    # q0 → (1,0): 1; q1 → class 1 only: (3,5.5) 2.25, not the class-0 copy (3,4); q2 → (1,0): 1
    expected = torch.tensor([1.0, 2.25, 1.0], dtype=torch.float64)
    result = nearest_same_class_sq_l2(query, query_labels, reference, reference_labels)
    assert torch.equal(result, expected)
    tiny_blocks = nearest_same_class_sq_l2(query, query_labels, reference, reference_labels,
                                           max_block=1)
    assert torch.equal(tiny_blocks, expected)


def test_blockwise_minimum_equals_full_matrix():
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(37, 5, generator=generator)
    reference = torch.randn(53, 5, generator=generator)
    full = pairwise_sq_l2(query, reference).min(dim=1).values
    assert torch.allclose(min_sq_l2(query, reference, max_block=7), full, rtol=0, atol=1e-12)


def test_nearest_same_class_names_missing_class():
    with pytest.raises(ValueError, match=r"class\(es\) \[2\]"):
        nearest_same_class_sq_l2(torch.zeros(2, 3), torch.tensor([0, 2]),
                                 torch.zeros(1, 3), torch.tensor([0]))


def _with_exact_moments(n, mean, covariance, seed):
    """n samples whose sample mean and (ddof=1) covariance are exactly ``mean``, ``covariance``."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, len(mean)))
    z -= z.mean(axis=0)
    whitened = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T
    return torch.from_numpy(whitened @ np.linalg.cholesky(covariance).T + mean)


def test_fid_of_a_set_with_itself_is_zero():
    features = torch.randn(200, 16, generator=torch.Generator().manual_seed(1))
    assert abs(frechet_distance(features, features)) < 1e-6


def test_fid_matches_closed_form_of_two_gaussians():
    # Σ1 = Q diag(a) Qᵀ and Σ2 = Q diag(b) Qᵀ commute, so Tr((Σ1Σ2)^½) = Σ √(a b).
    q, _ = np.linalg.qr(np.random.default_rng(2).normal(size=(4, 4)))
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([4.0, 0.5, 3.0, 9.0])
    mean_1, mean_2 = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, -1.0, 2.0, 0.5])
    closed_form = (np.sum((mean_1 - mean_2) ** 2) + a.sum() + b.sum() - 2 * np.sqrt(a * b).sum())
    first = _with_exact_moments(500, mean_1, q @ np.diag(a) @ q.T, seed=3)
    second = _with_exact_moments(700, mean_2, q @ np.diag(b) @ q.T, seed=4)
    assert frechet_distance(first, second) == pytest.approx(closed_form, rel=1e-9)


def test_fid_matches_scipy_square_root_for_non_commuting_covariances():
    rng = np.random.default_rng(5)
    factors = rng.normal(size=(2, 6, 6))
    sigma_1, sigma_2 = (f @ f.T + 0.1 * np.eye(6) for f in factors)
    mean_1, mean_2 = rng.normal(size=6), rng.normal(size=6)
    expected = (np.sum((mean_1 - mean_2) ** 2) + np.trace(sigma_1) + np.trace(sigma_2)
                - 2 * np.trace(linalg.sqrtm(sigma_1 @ sigma_2).real))
    first = _with_exact_moments(300, mean_1, sigma_1, seed=6)
    second = _with_exact_moments(300, mean_2, sigma_2, seed=7)
    assert frechet_distance(first, second) == pytest.approx(expected, rel=1e-7)


@pytest.mark.parametrize("rows_a, rows_b, width", [(160, 720, 112), (64, 64, 128), (30, 50, 8)])
def test_fid_equals_torch_fidelity_bit_for_bit(rows_a, rows_b, width):
    """lsmia's FID is torch-fidelity's arithmetic (metrics written before and after agree exactly),
    also with fewer samples than dimensions (singular covariances)."""
    from torch_fidelity.metric_fid import (KEY_METRIC_FID, fid_features_to_statistics,
                                           fid_statistics_to_metric)

    generator = torch.Generator().manual_seed(rows_a + width)
    first = torch.randn(rows_a, width, generator=generator).relu()
    second = torch.randn(rows_b, width, generator=generator).relu() * 1.5 + 0.1
    reference = fid_statistics_to_metric(
        *(fid_features_to_statistics(x.double()) for x in (first, second)), verbose=False)
    assert frechet_distance(first, second) == reference[KEY_METRIC_FID]


def test_fid_does_not_import_torch_fidelity():
    code = ("import sys, torch; from lsmia.metrics.fid import frechet_distance; "
            "frechet_distance(torch.randn(9, 3), torch.randn(7, 3)); "
            "assert 'torch_fidelity' not in sys.modules and 'torchvision' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fid_rejects_bad_features():
    with pytest.raises(ValueError, match="N ≥ 2"):
        frechet_distance(torch.zeros(1, 3), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="widths differ"):
        frechet_distance(torch.randn(5, 3), torch.randn(5, 4))
    with pytest.raises(FloatingPointError):
        frechet_distance(torch.full((5, 3), float("nan")), torch.randn(5, 3))


# Hand-computed: real X = 0, 1, 2, 10, 11 and fakes Y = 0.5, 1.5, 20, 21 on a line.
REAL = torch.tensor([[0.0], [1.0], [2.0], [10.0], [11.0]])
FAKE = torch.tensor([[0.5], [1.5], [20.0], [21.0]])


def test_prdc_by_hand_k1():
    # radii 1 everywhere. precision: 0.5, 1.5 lie in real balls (2/4); recall: 0, 1, 2 lie in fake
    # balls (3/5); density: 0.5 is in the balls of 0 and 1, 1.5 in those of 1 and 2 → 4/(1·4);
    # coverage: 0, 1, 2 have a fake within their radius (3/5).
    assert prdc(REAL, FAKE, k=1) == pytest.approx(
        {"precision": 0.5, "recall": 0.6, "density": 1.0, "coverage": 0.6})


def test_prdc_by_hand_k2_with_strict_boundaries():
    # real radii 2, 1, 2, 8, 9; fake radii 19.5, 18.5, 18.5, 19.5. 20 is exactly 9 from 11
    # (radius 9): not inside (strict). density: 0.5 and 1.5 each lie in 3 real balls → 6/(2·4).
    assert prdc(REAL, FAKE, k=2) == pytest.approx(
        {"precision": 0.5, "recall": 1.0, "density": 0.75, "coverage": 0.6})


def test_prdc_per_class_averages_classes_with_equal_weight():
    far = 1000.0
    real = torch.cat([REAL, REAL + far, REAL + far + 50])
    real_labels = torch.tensor([0] * 5 + [1] * 5 + [2] * 5)   # class 2 is not attacked
    fake = torch.cat([FAKE, REAL[:4] + far])                  # class 1: fakes on the real points
    fake_labels = torch.tensor([0] * 4 + [1] * 4)
    class_0 = prdc(REAL, FAKE, k=1)
    class_1 = prdc(REAL, REAL[:4], k=1)
    result = prdc_per_class(real, real_labels, fake, fake_labels, k=1)
    assert result == pytest.approx({key: (class_0[key] + class_1[key]) / 2 for key in class_0})
    assert class_1["precision"] == 1.0 and class_1["coverage"] == 0.8


def test_prdc_needs_more_than_k_samples_per_class():
    with pytest.raises(ValueError, match="class 1"):
        prdc_per_class(REAL, torch.tensor([0, 0, 0, 1, 1]), FAKE, torch.tensor([0, 0, 0, 1]), k=2)


def test_identity_leakage_on_known_codes():
    private = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    final = torch.tensor([
        [[1.0, 0.0], [6.0, 0.0]],     # attacks class 0: distances 1 (rank 1) and 6 (rank 2)
        [[0.0, 9.0], [0.0, 7.0]],     # attacks class 2: distances 1 and 3, both nearest
    ])
    result = identity_leakage(final, [0, 2], private)
    assert result["code_distance"] == pytest.approx((1 + 6 + 1 + 3) / 4)
    assert result["nearest_identity_accuracy"] == 0.75
    assert result["mean_rank"] == pytest.approx((1 + 2 + 1 + 1) / 4)


def test_identity_leakage_rejects_unknown_class():
    with pytest.raises(ValueError, match="classes"):
        identity_leakage(torch.zeros(1, 2, 3), [5], torch.zeros(3, 3))


def test_per_class_means_by_sorted_label_skipping_nan():
    labels = torch.tensor([2, 0, 2, 0, 5])
    values = {"a": torch.tensor([1.0, 2.0, 3.0, float("nan"), 4.0]),
              "hit": torch.tensor([True, False, False, True, True])}
    assert per_class_means(values, labels) == {"classes": [0, 2, 5], "a": [2.0, 2.0, 4.0],
                                               "hit": [0.5, 0.5, 1.0]}
    with pytest.raises(ValueError, match="'a' has 2 values for 5 labels"):
        per_class_means({"a": torch.ones(2)}, labels)
    with pytest.raises(ValueError, match="no finite value for class 5"):
        per_class_means({"a": torch.tensor([1.0, 1, 1, 1, float("nan")])}, labels)
