"""The procedural face model and the synthetic packed datasets."""

import json

import numpy as np
import pytest
import torch
from lsmia.data.packed import PackedDataset, verify_manifest
from lsmia.data.synthetic import (
    CODES_FILE,
    IDENTITY_FIELDS,
    NUISANCE_FIELDS,
    FaceModel,
    prepare_synthetic,
    sample_identity_codes,
    sample_nuisance,
)
from PIL import Image

torch.set_num_threads(1)
MODEL = FaceModel()


def codes(seed, n, nuisance_scale=1.0):
    generator = torch.Generator().manual_seed(seed)
    return sample_identity_codes(n, generator), sample_nuisance(n, generator, nuisance_scale)


def test_dimensions_match_the_named_fields():
    assert 24 <= FaceModel.identity_dim == len(IDENTITY_FIELDS) <= 40
    assert 8 <= FaceModel.nuisance_dim == len(NUISANCE_FIELDS) <= 16


@pytest.mark.parametrize("size", [32, 64])
def test_shape_and_range(size):
    identity, nuisance = codes(0, 6)
    images = MODEL.render(identity * 3.0, nuisance * 3.0, size)  # far-out codes stay in range too
    assert images.shape == (6, 3, size, size) and images.dtype == torch.float32
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert images.std() > 0.2  # not a flat image


def test_same_codes_give_bit_identical_images_and_seeds_differ():
    first = MODEL.render(*codes(3, 5), 32)
    again = MODEL.render(*codes(3, 5), 32)
    other = MODEL.render(*codes(4, 5), 32)
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 0.05


def test_sizes_render_the_same_face():
    identity, nuisance = codes(5, 4)
    small = MODEL.render(identity, nuisance, 32)
    large = torch.nn.functional.avg_pool2d(MODEL.render(identity, nuisance, 128), 4)
    unrelated = MODEL.render(*codes(6, 4), 32)
    assert (small - large).abs().mean() < 0.25 * (small - unrelated).abs().mean()


def test_gradients_reach_every_code_entry():
    identity, nuisance = codes(7, 16)
    identity.requires_grad_(True)
    nuisance.requires_grad_(True)
    images = MODEL.render(identity, nuisance, 32)
    weights = torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    (images * weights).sum().backward()
    for name, grad in (("identity", identity.grad), ("nuisance", nuisance.grad)):
        assert torch.isfinite(grad).all(), name
        dead = [i for i, column in enumerate(grad.abs().sum(0)) if column == 0]
        assert not dead, f"{name} entries without gradient: {dead}"


def test_nuisance_scale_multiplies_the_spread():
    base = sample_nuisance(50, torch.Generator().manual_seed(1))
    doubled = sample_nuisance(50, torch.Generator().manual_seed(1), scale=2.0)
    assert torch.allclose(doubled, 2.0 * base)
    identity = sample_identity_codes(1, torch.Generator().manual_seed(2)).expand(3, -1)
    still = MODEL.render(identity, sample_nuisance(3, torch.Generator(), scale=0.0), 32)
    assert torch.equal(still[0], still[1]) and torch.equal(still[1], still[2])
    with pytest.raises(ValueError, match="non-negative"):
        sample_nuisance(2, torch.Generator(), scale=-1.0)


@pytest.mark.parametrize("nuisance_scale", [1.0, 0.5])
def test_identities_differ_more_than_nuisance_changes_one(nuisance_scale):
    classes, per_class = 16, 6
    identity, _ = codes(11, classes)
    _, nuisance = codes(12, classes * per_class, nuisance_scale)
    images = MODEL.render(identity.repeat_interleave(per_class, 0), nuisance, 32).reshape(
        classes * per_class, -1
    )
    distances = torch.cdist(images, images).reshape(classes, per_class, classes, per_class)
    same_class = torch.eye(classes, dtype=torch.bool)[:, None, :, None].expand_as(distances)
    other_image = ~torch.eye(per_class, dtype=torch.bool)[None, :, None, :].expand_as(distances)
    within = distances[same_class & other_image].mean()
    between = distances[~same_class].mean()
    assert between > within
    assert (
        within > 0.3 * between
    )  # nuisance is substantial: same-identity images are not near-copies


def test_bad_codes_are_rejected():
    identity, nuisance = codes(0, 2)
    with pytest.raises(ValueError, match="identity codes must have shape"):
        MODEL.render(identity[:, :-1], nuisance, 32)
    with pytest.raises(ValueError, match="same batch size"):
        MODEL.render(identity, nuisance[:1], 32)
    with pytest.raises(ValueError, match="image_size"):
        MODEL.render(identity, nuisance, 4)


def prepare(root, public_identities=4, seed=9, **overrides):
    settings = {
        "identities": 3,
        "public_identities": public_identities,
        "images_per_identity": 10,
        "image_size": 16,
        "test_fraction": 0.2,
        "seed": seed,
        "grid_size": 32,
    }
    settings.update(overrides)
    prepare_synthetic(root / "private", root / "public", root / "faces.png", **settings)
    return root


def test_prepare_synthetic_writes_two_packed_sets(tmp_path):
    root = prepare(tmp_path)
    for name, classes in (("private", 3), ("public", 4)):
        verify_manifest(root / name)
        full = PackedDataset(root / name)
        assert (
            len(full) == classes * 10
            and full.num_classes == classes
            and full.image_size == (16, 16)
        )
        assert full.identities == [f"synth-{name}-{k:03d}" for k in range(classes)]
        test = PackedDataset(root / name, split="test")
        assert np.bincount(test.labels, minlength=classes).tolist() == [2] * classes
        assert len(PackedDataset(root / name, split="train")) == classes * 8
        stored = np.load(root / name / CODES_FILE)
        assert stored.shape == (classes, FaceModel.identity_dim) and stored.dtype == np.float32
        manifest = json.loads((root / name / "manifest.json").read_text())
        assert manifest["settings"]["set"] == name and manifest["settings"]["seed"] == 9
    grid = Image.open(root / "faces.png")
    assert grid.size[1] == (3 + 3) * (32 + 4)  # all 3 private rows, 3 public rows


def test_stored_images_are_renders_of_the_stored_codes(tmp_path):
    root = prepare(tmp_path)
    data = PackedDataset(root / "private")
    codes_ = torch.from_numpy(np.load(root / "private" / CODES_FILE))
    images, labels = data.batch(np.arange(len(data)))
    # Same identity → same skin, hair and features; compare mean colours per class against renders
    # of the stored code under zero nuisance (a loose, nuisance-averaged match).
    reference = MODEL.render(codes_, torch.zeros(len(codes_), FaceModel.nuisance_dim), 16)
    centre = (images.float() / 127.5 - 1.0)[:, :, 4:12, 5:11].mean(dim=(2, 3))  # the face's middle
    expected = reference[:, :, 4:12, 5:11].mean(dim=(2, 3))
    own = (centre - expected[labels]).abs().mean()
    shuffled = (centre - expected[(labels + 1) % len(codes_)]).abs().mean()
    assert own < shuffled


def test_prepare_synthetic_is_deterministic_and_streams_are_independent(tmp_path):
    a = prepare(tmp_path / "a")
    b = prepare(tmp_path / "b")
    more_public = prepare(tmp_path / "c", public_identities=6)
    other_seed = prepare(tmp_path / "d", seed=10)
    for name in ("private", "public"):
        assert (a / name / "images.npy").read_bytes() == (b / name / "images.npy").read_bytes()
        assert (a / name / "index.csv").read_bytes() == (b / name / "index.csv").read_bytes()
    private = np.load(a / "private" / CODES_FILE)
    assert np.array_equal(private, np.load(more_public / "private" / CODES_FILE))
    assert (a / "private" / "images.npy").read_bytes() == (
        more_public / "private" / "images.npy"
    ).read_bytes()
    public = np.load(more_public / "public" / CODES_FILE)
    assert public.shape[0] == 6
    assert np.min(np.linalg.norm(private[:, None] - public[None], axis=-1)) > 1.0
    assert not np.array_equal(private, np.load(other_seed / "private" / CODES_FILE))


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("test_fraction", 1.0, "test_fraction"),
        ("test_fraction", 0.95, "leaves no training image"),
        ("identities", 0, "identities must be a positive integer"),
    ],
)
def test_prepare_synthetic_rejects_bad_settings(tmp_path, key, value, message):
    with pytest.raises(ValueError, match=message):
        prepare(tmp_path, **{key: value})
    assert not (tmp_path / "private").exists()
