"""Generator priors: the procedural prior, and StyleGAN2Prior on the real NVlabs code."""

import logging
import pickle
import shutil

import pytest
import torch
from nvlabs import SMALL_GENERATOR, stylegan2_checkout, write_network_pickle

from lsmia.attacks import Generator, ProceduralFacePrior, StyleGAN2Prior, load_generator
from lsmia.attacks.latents import broadcast_w, truncate

CPU = torch.device("cpu")
SIZE = SMALL_GENERATOR["img_resolution"]
W_DIM = SMALL_GENERATOR["w_dim"]
NUM_WS = 10  # 64 px: two style layers per resolution 4..64, minus one


@pytest.fixture(scope="module")
def checkout():
    return stylegan2_checkout()


@pytest.fixture(scope="module")
def network_pickle(tmp_path_factory, checkout):
    return write_network_pickle(tmp_path_factory.mktemp("nvlabs") / "network.pkl", checkout)


@pytest.fixture
def custom_ops(checkout, monkeypatch):
    """The real ``bias_act`` and ``upfirdn2d`` modules; a test sets their one-time build state
    (``_inited``, ``_plugin``), which the real ops only touch on CUDA, and it is restored after."""
    from torch_utils.ops import bias_act, upfirdn2d

    modules = (bias_act, upfirdn2d)
    for module in modules:
        monkeypatch.setattr(module, "_inited", False)
        monkeypatch.setattr(module, "_plugin", None)
    return modules


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


def test_stylegan2_prior_on_the_nvlabs_generator(checkout, network_pickle, custom_ops):
    spec = {"kind": "stylegan2", "checkout": checkout, "pickle": network_pickle}
    prior = load_generator(spec, CPU)
    assert isinstance(prior, StyleGAN2Prior) and isinstance(prior, Generator)
    assert (prior.w_dim, prior.num_ws, prior.image_size) == (W_DIM, NUM_WS, SIZE)
    assert type(prior.G).__name__ == "Generator" and prior.G.init_kwargs["img_resolution"] == SIZE

    w_avg = prior.G.mapping.w_avg
    raw = prior.sample_w(4, seed=1, psi=1.0, cutoff=3)
    assert raw.shape == (4, NUM_WS, W_DIM)
    # The mapping broadcasts one w to all layers; truncation moves layers < cutoff towards w_avg.
    torch.testing.assert_close(raw[:, 0], raw[:, -1])
    truncated = prior.sample_w(4, seed=1, psi=0.5, cutoff=3)
    torch.testing.assert_close(truncated[:, :3], w_avg + 0.5 * (raw[:, :3] - w_avg))
    torch.testing.assert_close(truncated[:, 3:], raw[:, 3:])
    fully_truncated = prior.sample_w(2, seed=1, psi=0.0, cutoff=None)
    torch.testing.assert_close(fully_truncated, w_avg.expand(2, NUM_WS, W_DIM))

    single = raw[:, 0].clone().requires_grad_(True)
    images = prior.synthesise(single)
    assert images.shape == (4, 3, SIZE, SIZE)
    torch.testing.assert_close(images, prior.synthesise(raw))  # const noise: deterministic
    images.square().mean().backward()
    assert single.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore:Failed to build CUDA kernels")
def test_stylegan2_prior_warns_when_custom_ops_fell_back(
    checkout, network_pickle, custom_ops, caplog
):
    prior = StyleGAN2Prior(checkout, network_pickle, CPU)
    for module in custom_ops:  # as after a failed build on CUDA
        module._inited, module._plugin = True, None
    w = prior.sample_w(2, seed=0)
    with caplog.at_level(logging.WARNING, logger="lsmia.attacks.stylegan2"):
        with pytest.warns(RuntimeWarning, match="fell back.*bias_act.*upfirdn2d"):
            prior.synthesise(w)
    assert "slow reference implementation" in caplog.text


def test_stylegan2_prior_silent_when_custom_ops_built_or_unused(
    checkout, network_pickle, custom_ops, recwarn
):
    prior = StyleGAN2Prior(checkout, network_pickle, CPU)
    prior.synthesise(prior.sample_w(2, seed=0))  # CPU: the ops never try to build
    for module in custom_ops:  # as after a successful build on CUDA
        module._inited, module._plugin = True, object()
    prior._ops_checked = False
    prior.synthesise(prior.sample_w(2, seed=0))
    assert not [w for w in recwarn if "fell back" in str(w.message)]


def test_stylegan2_prior_without_legacy_module(tmp_path, checkout, network_pickle):
    """A checkout without legacy.py: the pickle is read with plain ``pickle.load``."""
    bare = tmp_path / "checkout"
    shutil.copytree(checkout, bare, ignore=shutil.ignore_patterns("legacy.py", "__pycache__"))
    prior = StyleGAN2Prior(bare, network_pickle, CPU)
    assert prior.num_ws == NUM_WS


def test_stylegan2_prior_errors(tmp_path, checkout, network_pickle):
    with pytest.raises(FileNotFoundError, match="snakemake fetch_stylegan2"):
        StyleGAN2Prior(tmp_path / "no_checkout", network_pickle, CPU)
    with pytest.raises(FileNotFoundError, match="missing.pkl"):
        StyleGAN2Prior(checkout, tmp_path / "missing.pkl", CPU)

    only_g = tmp_path / "only_g.pkl"  # legacy.py insists on G, D and G_ema
    only_g.write_bytes(pickle.dumps({"G": torch.nn.Linear(1, 1)}))
    with pytest.raises(ValueError, match="only_g.pkl.*G_ema"):
        StyleGAN2Prior(checkout, only_g, CPU)

    linears = {name: torch.nn.Linear(1, 1) for name in ("G", "D", "G_ema")}
    not_a_generator = tmp_path / "linear.pkl"
    not_a_generator.write_bytes(pickle.dumps(linears))
    with pytest.raises(ValueError, match="not a StyleGAN2 generator.*mapping"):
        StyleGAN2Prior(checkout, not_a_generator, CPU)

    garbage = tmp_path / "garbage.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="garbage.pkl"):
        StyleGAN2Prior(checkout, garbage, CPU)

    # A pickle of another StyleGAN generation names a module this checkout lacks.
    stylegan3 = tmp_path / "stylegan3.pkl"
    stylegan3.write_bytes(b"ctraining.networks_stylegan3\nGenerator\n.")
    with pytest.raises(ValueError, match="networks_stylegan3.*another StyleGAN version"):
        StyleGAN2Prior(checkout, stylegan3, CPU)


def test_load_generator_bad_specs():
    with pytest.raises(ValueError, match="kind must be"):
        load_generator({"kind": "biggan"}, CPU)
    with pytest.raises(ValueError, match="missing.*pickle"):
        load_generator({"kind": "stylegan2", "checkout": "x"}, CPU)
    assert load_generator({"kind": "procedural", "image_size": 12}, CPU).image_size == 12


def test_ninja_of_the_environment_goes_on_path(tmp_path, monkeypatch):
    """The custom ops build with the pinned ninja even when the venv was not activated."""
    from lsmia.attacks import stylegan2

    scripts = tmp_path / "venv" / "bin"
    scripts.mkdir(parents=True)
    (scripts / "ninja").write_text("")
    monkeypatch.setattr(stylegan2.sys, "executable", str(scripts / "python"))
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    stylegan2.put_ninja_on_path()
    stylegan2.put_ninja_on_path()  # idempotent
    assert stylegan2.os.environ["PATH"] == f"{scripts}:/usr/bin:/bin"
