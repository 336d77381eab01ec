"""Generator priors: the procedural prior, and StyleGAN2Prior against a stand-in NVlabs checkout."""

import logging
import pickle
import shutil
import sys
from pathlib import Path

import pytest
import torch

from lsmia.attacks.generators import (
    Generator,
    ProceduralFacePrior,
    broadcast_w,
    load_generator,
    truncate,
)
from lsmia.attacks.stylegan2 import StyleGAN2Prior

STANDIN = Path(__file__).parent / "stylegan_standin"
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def standin_generator_class():
    """``training.networks.Generator`` of the stand-in checkout (importable so pickles resolve)."""
    sys.path.insert(0, str(STANDIN))
    from training.networks import Generator as StandinGenerator

    return StandinGenerator


@pytest.fixture
def network_pickle(tmp_path, standin_generator_class):
    torch.manual_seed(0)
    path = tmp_path / "network.pkl"
    generator = standin_generator_class(z_dim=8, w_dim=16, img_resolution=16)
    with open(path, "wb") as handle:
        pickle.dump({"G": generator, "D": torch.nn.Linear(1, 1), "G_ema": generator}, handle)
    return path


@pytest.fixture
def fresh_custom_ops():
    """Reset the stand-in ops' one-time build state before and after a test."""
    from torch_utils.ops import bias_act, upfirdn2d

    def reset():
        for module in (bias_act, upfirdn2d):
            module._inited, module._plugin = False, None

    reset()
    yield
    reset()


def test_procedural_prior_truncation_and_shapes():
    prior = ProceduralFacePrior(16, CPU)
    assert isinstance(prior, Generator)
    assert prior.num_ws == 1 and prior.w_dim == prior.model.identity_dim + prior.model.nuisance_dim
    z = prior.sample_w(5, seed=3, psi=1.0, cutoff=8)
    assert z.shape == (5, 1, prior.w_dim)
    torch.testing.assert_close(prior.sample_w(5, seed=3, psi=0.5, cutoff=8), 0.5 * z)
    assert not torch.equal(prior.sample_w(5, seed=4), z)
    w = z[:, 0].clone().requires_grad_(True)
    images = prior.synthesise(w)
    assert images.shape == (5, 3, 16, 16)
    assert images.min() >= -1 and images.max() <= 1
    images.mean().backward()
    assert w.grad.abs().sum() > 0


def test_truncate_only_first_cutoff_layers():
    w = torch.randn(2, 5, 3)
    mean = torch.randn(3)
    out = truncate(w, mean, psi=0.25, cutoff=2)
    torch.testing.assert_close(out[:, :2], mean + 0.25 * (w[:, :2] - mean))
    assert torch.equal(out[:, 2:], w[:, 2:])
    torch.testing.assert_close(truncate(w, mean, 0.0, None), mean.expand_as(w))


def test_broadcast_w_shapes():
    w = torch.randn(4, 7)
    assert broadcast_w(w, 3).shape == (4, 3, 7)
    ws = torch.randn(4, 3, 7)
    assert broadcast_w(ws, 3) is ws
    with pytest.raises(ValueError, match="N×3×w_dim"):
        broadcast_w(torch.randn(4, 2, 7), 3)


def test_stylegan2_prior_loads_standin_pickle(network_pickle, fresh_custom_ops, monkeypatch):
    monkeypatch.setenv("STANDIN_CUSTOM_OPS", "built")
    spec = {"kind": "stylegan2", "checkout": STANDIN, "pickle": network_pickle}
    prior = load_generator(spec, CPU)
    assert isinstance(prior, StyleGAN2Prior) and isinstance(prior, Generator)
    assert (prior.w_dim, prior.num_ws, prior.image_size) == (16, 6, 16)

    w_avg = prior.G.mapping.w_avg
    raw = prior.sample_w(4, seed=1, psi=1.0, cutoff=3)
    assert raw.shape == (4, 6, 16)
    # The mapping broadcasts one w to all layers; truncation moves layers < cutoff towards w_avg.
    torch.testing.assert_close(raw[:, 0], raw[:, 5])
    truncated = prior.sample_w(4, seed=1, psi=0.5, cutoff=3)
    torch.testing.assert_close(truncated[:, :3], w_avg + 0.5 * (raw[:, :3] - w_avg))
    torch.testing.assert_close(truncated[:, 3:], raw[:, 3:])
    fully_truncated = prior.sample_w(2, seed=1, psi=0.0, cutoff=None)
    torch.testing.assert_close(fully_truncated, w_avg.expand(2, 6, 16))

    single = raw[:, 0].clone().requires_grad_(True)
    images = prior.synthesise(single)
    assert images.shape == (4, 3, 16, 16)
    torch.testing.assert_close(images, prior.synthesise(raw))  # const noise: deterministic
    images.square().mean().backward()
    assert single.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore:Failed to build CUDA kernels")
def test_stylegan2_prior_warns_when_custom_ops_fell_back(
    network_pickle, fresh_custom_ops, monkeypatch, caplog
):
    monkeypatch.delenv("STANDIN_CUSTOM_OPS", raising=False)
    prior = StyleGAN2Prior(STANDIN, network_pickle, CPU)
    w = prior.sample_w(2, seed=0)
    with caplog.at_level(logging.WARNING, logger="lsmia.attacks.stylegan2"):
        with pytest.warns(RuntimeWarning, match="fell back.*bias_act.*upfirdn2d"):
            prior.synthesise(w)
    assert "slow reference implementation" in caplog.text


def test_stylegan2_prior_silent_when_custom_ops_built(
    network_pickle, fresh_custom_ops, monkeypatch, recwarn
):
    monkeypatch.setenv("STANDIN_CUSTOM_OPS", "built")
    prior = StyleGAN2Prior(STANDIN, network_pickle, CPU)
    prior.synthesise(prior.sample_w(2, seed=0))
    assert not [w for w in recwarn if "fell back" in str(w.message)]


def test_stylegan2_prior_without_legacy_module(tmp_path, network_pickle, fresh_custom_ops):
    checkout = tmp_path / "checkout"
    shutil.copytree(STANDIN, checkout, ignore=shutil.ignore_patterns("legacy.py", "__pycache__"))
    prior = StyleGAN2Prior(checkout, network_pickle, CPU)
    assert prior.num_ws == 6


def test_stylegan2_prior_errors(tmp_path, network_pickle):
    with pytest.raises(FileNotFoundError, match="snakemake fetch_stylegan2"):
        StyleGAN2Prior(tmp_path / "no_checkout", network_pickle, CPU)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        StyleGAN2Prior(STANDIN, tmp_path / "missing.pkl", CPU)

    no_g_ema = tmp_path / "no_g_ema.pkl"
    no_g_ema.write_bytes(pickle.dumps({"G": torch.nn.Linear(1, 1)}))
    with pytest.raises(ValueError, match="no_g_ema.pkl.*G_ema"):
        StyleGAN2Prior(STANDIN, no_g_ema, CPU)

    not_a_generator = tmp_path / "linear.pkl"
    not_a_generator.write_bytes(pickle.dumps({"G_ema": torch.nn.Linear(1, 1)}))
    with pytest.raises(ValueError, match="not a StyleGAN2 generator.*mapping"):
        StyleGAN2Prior(STANDIN, not_a_generator, CPU)

    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="garbage.pkl"):
        StyleGAN2Prior(STANDIN, garbage, CPU)


def test_load_generator_bad_specs():
    with pytest.raises(ValueError, match="kind must be"):
        load_generator({"kind": "biggan"}, CPU)
    with pytest.raises(ValueError, match="missing.*pickle"):
        load_generator({"kind": "stylegan2", "checkout": "x"}, CPU)
    assert load_generator({"kind": "procedural", "image_size": 12}, CPU).image_size == 12
