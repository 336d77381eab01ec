"""The label-smoothing loss for positive and negative α, and the expected calibration error."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lsmia.training import expected_calibration_error, label_smoothing_loss


@pytest.mark.parametrize("alpha", [0.0, 0.05, 0.1, 0.5, 1.0])
def test_non_negative_alpha_equals_torch_label_smoothing(alpha):
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(32, 7, generator=generator) * 3
    targets = torch.randint(0, 7, (32,), generator=generator)
    expected = F.cross_entropy(logits, targets, label_smoothing=alpha)
    assert torch.allclose(label_smoothing_loss(logits, targets, alpha), expected, atol=1e-6)


def test_negative_alpha_matches_hand_computed_two_sample_case():
    logits = torch.tensor([[0.0, math.log(3.0)], [math.log(2.0), math.log(2.0)]])
    targets = torch.tensor([1, 0])
    alpha = -0.5
    # sample 1: p = (1/4, 3/4), y = 1; sample 2: p = (1/2, 1/2), y = 0
    first = 1.5 * -math.log(0.75) - 0.5 * 0.5 * (-math.log(0.25) - math.log(0.75))
    second = 1.5 * math.log(2.0) - 0.5 * math.log(2.0)
    loss = label_smoothing_loss(logits, targets, alpha)
    assert loss.item() == pytest.approx((first + second) / 2, abs=1e-6)


def test_negative_alpha_loss_can_be_negative_and_is_differentiable():
    logits = torch.tensor([[10.0, -10.0, -10.0]], requires_grad=True)
    loss = label_smoothing_loss(logits, torch.tensor([0]), -0.1)
    assert loss.item() < 0  # confident correct prediction: the uniform term dominates
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_half_precision_logits_are_computed_in_float32():
    logits = torch.randn(8, 5).to(torch.bfloat16)
    targets = torch.arange(8) % 5
    loss = label_smoothing_loss(logits, targets, -0.05)
    assert loss.dtype == torch.float32
    expected = label_smoothing_loss(logits.float(), targets, -0.05)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-6)


def test_alpha_above_one_and_bad_shapes_are_rejected():
    logits, targets = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    with pytest.raises(ValueError, match="α ≤ 1"):
        label_smoothing_loss(logits, targets, 1.01)
    with pytest.raises(ValueError, match="N×C logits"):
        label_smoothing_loss(logits[0], targets, 0.1)


def test_ece_of_a_constructed_case():
    # bin (0.6, 0.667]: confidences 0.62, 0.62, 1 of 2 correct -> |0.5 - 0.62| = 0.12
    # bin (0.933, 1]:   confidence 0.95, 0.95, both correct     -> |1 - 0.95|   = 0.05
    probs = np.array([[0.62, 0.38], [0.38, 0.62], [0.95, 0.05], [0.05, 0.95]])
    labels = np.array([0, 0, 0, 1])
    expected = 2 / 4 * 0.12 + 2 / 4 * 0.05
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(expected)


def test_ece_is_zero_when_confidence_equals_accuracy_and_bins_matter():
    probs = torch.tensor([[0.75, 0.25]] * 4)
    labels = torch.tensor([0, 0, 0, 1])  # accuracy 0.75 at confidence 0.75
    assert expected_calibration_error(probs, labels) == pytest.approx(0.0, abs=1e-12)
    # one bin holding confidences 0.55 (wrong) and 0.95 (right): |0.5 - 0.75| = 0.25; with 15 bins
    # they are separate: (|0 - 0.55| + |1 - 0.95|) / 2 = 0.3
    probs = torch.tensor([[0.55, 0.45], [0.95, 0.05]])
    labels = torch.tensor([1, 0])
    assert expected_calibration_error(probs, labels, n_bins=1) == pytest.approx(0.25)
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(0.3)


def test_ece_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="N×C probabilities"):
        expected_calibration_error(torch.ones(3, 2) / 2, torch.zeros(2, dtype=torch.long))


def test_ece_of_non_finite_probabilities_fails_loudly():
    probs = torch.tensor([[0.5, 0.5], [float("nan"), float("nan")], [0.9, 0.1]])
    with pytest.raises(ValueError, match="1 of 3 rows"):
        expected_calibration_error(probs, torch.tensor([0, 1, 0]))
