"""PPA stages: Poincaré loss, sampling, selection, views and the sample grid."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from lsmia.attacks import ProceduralFacePrior, poincare_loss, sample_stage, save_grid, select_stage
from lsmia.attacks.views import PAPER_CROP_FRACTION, target_view, to_uint8, top_k_per_row

CPU = torch.device("cpu")
torch.set_num_threads(1)


class ColourGenerator:
    """Fake prior: w (3 numbers) → a flat image of colour tanh(w), unchanged by crops and flips."""

    w_dim, num_ws, image_size = 3, 1, 16

    def sample_w(self, n, seed, psi, cutoff, draw="numpy"):
        return psi * torch.randn(n, 1, 3, generator=torch.Generator().manual_seed(seed))

    def synthesise(self, w):
        w = w.reshape(len(w), 3)
        return torch.tanh(w)[:, :, None, None].expand(-1, -1, self.image_size, self.image_size)


class ColourTarget(nn.Module):
    """Logits = matrix @ mean colour: the test knows every logit the stage will see."""

    def __init__(self, matrix):
        super().__init__()
        self.matrix = nn.Parameter(matrix)

    def forward(self, images):
        return images.mean(dim=(2, 3)) @ self.matrix.T


def expected_probabilities(w, matrix):
    return (torch.tanh(w.reshape(len(w), 3)) @ matrix.T).softmax(dim=1)


def tiny_target(num_classes=4):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2), nn.ReLU(), nn.Conv2d(8, 8, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes),
    )


def test_poincare_loss_hand_computed():
    # u = [1, -1, 2] / 4; v = [0, 0, 1 − 1e-4]; ‖u‖² = 0.375; ‖v‖² = 0.9999²;
    # ‖u − v‖² = 0.0625 + 0.0625 + (0.5 − 0.9999)²
    first = math.acosh(1 + 2 * (0.125 + 0.4999**2) / ((1 - 0.375) * (1 - 0.9999**2)))
    # u = [0.5, 0.5, 0]; target 0: v = [0.9999, 0, 0]; ‖u − v‖² = 0.4999² + 0.25
    second = math.acosh(1 + 2 * (0.4999**2 + 0.25) / ((1 - 0.5) * (1 - 0.9999**2)))
    logits = torch.tensor([[1.0, -1.0, 2.0], [3.0, 3.0, 0.0]], dtype=torch.float64)
    targets = torch.tensor([2, 0])
    per_sample = poincare_loss(logits, targets, reduction="none")
    assert per_sample.dtype == torch.float32
    # float32 throughout, like the reference: 1 − ‖v‖² ≈ 2e-4 costs about four digits.
    expected = torch.tensor([first, second])
    torch.testing.assert_close(per_sample, expected, rtol=1e-4, atol=0)
    torch.testing.assert_close(poincare_loss(logits, targets), expected.mean(), rtol=1e-4, atol=0)


def test_poincare_loss_prefers_the_target_class_and_rejects_bad_input():
    targets = torch.tensor([1])
    assert poincare_loss(torch.tensor([[0.1, 5.0, 0.2]]), targets) < poincare_loss(
        torch.tensor([[5.0, 0.1, 0.2]]), targets
    )
    with pytest.raises(ValueError, match="N×C"):
        poincare_loss(torch.zeros(3), targets)
    with pytest.raises(ValueError, match="targets must have shape"):
        poincare_loss(torch.zeros(2, 3), targets)


def test_top_k_per_row_breaks_ties_by_index_and_checks_k():
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    values, order = top_k_per_row(scores, 3, "t")
    assert order.tolist() == [[1, 2, 3], [0, 1, 2]]
    assert values.tolist() == [[3.0, 3.0, 2.0], [0.0, 0.0, 0.0]]
    with pytest.raises(ValueError, match="cannot keep 5 per class out of 4"):
        top_k_per_row(torch.zeros(1, 4), 5, "t")


def test_target_view_crops_centre_fraction_and_resizes():
    images = torch.zeros(1, 3, 64, 64)
    images[..., 7:57, 7:57] = 1.0  # the centre 50 px = round(64 · 800/1024)
    view = target_view(images, PAPER_CROP_FRACTION, 25)
    assert view.shape == (1, 3, 25, 25)
    torch.testing.assert_close(view, torch.ones_like(view))
    with pytest.raises(ValueError, match="crop_fraction"):
        target_view(images, 1.5, 25)


def sample_colour(matrix, classes, k, batch_size=7, seed=5):
    return sample_stage(
        ColourGenerator(), ColourTarget(matrix), classes, search_space_size=40,
        candidates_per_class=k, psi=0.5, cutoff=8, crop_fraction=PAPER_CROP_FRACTION,
        input_size=8, batch_size=batch_size, seed=seed, device=CPU,
    )


def test_sample_stage_keeps_top_confidence_latents_per_class():
    matrix = torch.randn(5, 3, generator=torch.Generator().manual_seed(1)) * 3
    out = sample_colour(matrix, [4, 0, 2], k=6)
    latents = ColourGenerator().sample_w(40, 5, 0.5, 8)
    probabilities = expected_probabilities(latents, matrix)
    assert out["w"].shape == (3, 6, 1, 3) and out["confidence"].shape == (3, 6)
    assert out["classes"].tolist() == [4, 0, 2]
    for row, label in enumerate([4, 0, 2]):
        best = torch.argsort(probabilities[:, label], descending=True)[:6]
        assert out["indices"][row].tolist() == best.tolist()
        torch.testing.assert_close(out["confidence"][row], probabilities[best, label])
        assert torch.equal(out["w"][row], latents[best])
    # batching does not change the result
    again = sample_colour(matrix, [4, 0, 2], k=6, batch_size=40)
    assert torch.equal(again["indices"], out["indices"])


def test_sample_stage_never_repeats_a_latent_within_a_class():
    # Two classes with identical logits rank the latents identically: both keep the same latents
    # (allowed across classes); constant logits make every score tie: still k distinct latents.
    matrix = torch.tensor([[1.0, 2.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    out = sample_colour(matrix, [0, 1], k=10)
    assert torch.equal(out["indices"][0], out["indices"][1])
    tied = sample_colour(torch.zeros(3, 3), [0, 2], k=10)
    for row in tied["indices"]:
        assert len(set(row.tolist())) == 10
    assert tied["indices"][0].tolist() == list(range(10))


def test_sample_stage_rejects_bad_classes_and_sizes():
    matrix = torch.eye(3)
    with pytest.raises(ValueError, match=r"classes must lie in \[0, 3\)"):
        sample_colour(matrix, [0, 3], k=2)
    with pytest.raises(ValueError, match="distinct"):
        sample_colour(matrix, [1, 1], k=2)
    with pytest.raises(ValueError, match="cannot keep 41 per class out of 40"):
        sample_colour(matrix, [0], k=41)


def select(generator, target, optimise_out, seed=3, batch_size=5, **overrides):
    settings = dict(final_per_class=3, transforms=12, crop_scale=(0.5, 0.9), crop_ratio=(0.8, 1.2),
                    crop_fraction=PAPER_CROP_FRACTION, input_size=16, batch_size=batch_size,
                    seed=seed, device=CPU)
    settings.update(overrides)
    return select_stage(generator, target, optimise_out, **settings)


def test_select_stage_keeps_the_best_per_class():
    matrix = torch.randn(4, 3, generator=torch.Generator().manual_seed(2)) * 3
    w = torch.randn(2, 8, 3, generator=torch.Generator().manual_seed(3))
    classes = torch.tensor([3, 1])
    out = select(ColourGenerator(), ColourTarget(matrix), {"w": w, "classes": classes},
                 image_size=10)
    probabilities = expected_probabilities(w.reshape(-1, 3), matrix).reshape(2, 8, 4)
    for row, label in enumerate(classes.tolist()):
        best = torch.argsort(probabilities[row, :, label], descending=True)[:3]
        assert out["indices"][row].tolist() == best.tolist()
        torch.testing.assert_close(out["confidence"][row], probabilities[row, best, label])
        assert torch.equal(out["w"][row], w[row, best])
    assert out["images"].shape == (2, 3, 10, 10, 3) and out["images"].dtype == torch.uint8
    expected_pixel = to_uint8(ColourGenerator().synthesise(out["w"][1, :1]))[0, 0, 0]
    assert torch.equal(out["images"][1, 0, 5, 5], expected_pixel)


def test_select_stage_is_deterministic_and_independent_of_batching():
    prior = ProceduralFacePrior(24, CPU)
    w = prior.sample_w(12, seed=0, psi=0.7, cutoff=8).reshape(2, 6, prior.w_dim)
    optimise_out = {"w": w, "classes": torch.tensor([0, 2])}
    target = tiny_target()
    first = select(prior, target, optimise_out)
    second = select(prior, target, optimise_out, batch_size=12)
    torch.testing.assert_close(first["confidence"], second["confidence"], rtol=1e-5, atol=1e-7)
    assert torch.equal(first["indices"], second["indices"])
    assert first["images"].shape == (2, 3, 19, 19, 3)  # round(24 · 800/1024), native resolution
    other_seed = select(prior, target, optimise_out, seed=4)
    assert not torch.allclose(other_seed["confidence"], first["confidence"])


def test_save_grid_writes_one_row_per_class(tmp_path):
    images = torch.zeros(12, 4, 6, 6, 3, dtype=torch.uint8)
    images[1] = 200
    path = tmp_path / "grid.png"
    save_grid(images, list(range(12)), path, max_classes=3, max_per_class=2, gap=2, label_width=40)
    picture = np.asarray(Image.open(path))
    assert picture.shape == (3 * 8 - 2, 40 + 2 * 8 - 2, 3)
    assert (picture[8:14, 40:46] == 200).all() and (picture[0:6, 40:46] == 0).all()
    with pytest.raises(ValueError, match="2 classes for 12 rows"):
        save_grid(images, [0, 1], path)
    with pytest.raises(ValueError, match="uint8"):
        save_grid(images.float(), list(range(12)), path)
