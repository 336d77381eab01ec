"""The NVlabs stylegan2-ada-pytorch code for tests: where it is, and small random-weight pickles.

Tests find the checkout at ``$LSMIA_STYLEGAN2_CHECKOUT``, else at
``../shared/vendor/stylegan2-ada-pytorch`` beside the repository (where CI puts it). Under
``CI=true`` a missing checkout fails the test; elsewhere the test is skipped with a message naming
the variable.
"""
from __future__ import annotations

import copy
import os
import pickle
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
CHECKOUT_VARIABLE = "LSMIA_STYLEGAN2_CHECKOUT"
DEFAULT_CHECKOUT = REPO.parent / "shared" / "vendor" / "stylegan2-ada-pytorch"

#: A 64-px StyleGAN2-ADA with few channels and the FFHQ config's 8 mapping layers; w_dim reduced.
SMALL_GENERATOR = dict(z_dim=64, w_dim=64, img_resolution=64, mapping_layers=8, channel_base=1024,
                       channel_max=32)


def stylegan2_checkout() -> Path:
    """The NVlabs checkout (``dnnlib/``, ``torch_utils/``, ``training/``, ``legacy.py``)."""
    configured = os.environ.get(CHECKOUT_VARIABLE)
    path = Path(configured) if configured else DEFAULT_CHECKOUT
    if (path / "training" / "networks.py").is_file() and (path / "legacy.py").is_file():
        return path.resolve()
    message = (f"no NVlabs stylegan2-ada-pytorch checkout at {path}: set {CHECKOUT_VARIABLE} to "
               f"one (default {DEFAULT_CHECKOUT})")
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def import_checkout(checkout: Path):
    """Put the checkout on ``sys.path``; return its ``training.networks`` module."""
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    from training import networks

    return networks


def build_generator(checkout: Path, seed: int = 0, *, z_dim: int, w_dim: int, img_resolution: int,
                    mapping_layers: int, channel_base: int, channel_max: int):
    """A ``training.networks.Generator`` with random weights (fp32 throughout, no clamping)."""
    networks = import_checkout(checkout)
    torch.manual_seed(seed)
    return networks.Generator(
        z_dim=z_dim, c_dim=0, w_dim=w_dim, img_resolution=img_resolution, img_channels=3,
        mapping_kwargs={"num_layers": mapping_layers},
        synthesis_kwargs={"channel_base": channel_base, "channel_max": channel_max,
                          "num_fp16_res": 0, "conv_clamp": None},
    )


def write_network_pickle(path: Path, checkout: Path, seed: int = 0, **sizes) -> Path:
    """Pickle a small random generator as NVlabs' training loop writes its snapshots: a dict of
    ``training_set_kwargs`` and eval-mode, gradient-free copies of G, D, G_ema and augment_pipe."""
    sizes = {**SMALL_GENERATOR, **sizes}
    generator = build_generator(checkout, seed, **sizes)
    networks = import_checkout(checkout)
    discriminator = networks.Discriminator(
        c_dim=0, img_resolution=sizes["img_resolution"], img_channels=3,
        channel_base=sizes["channel_base"], channel_max=sizes["channel_max"],
    )
    snapshot = {"training_set_kwargs": {"resolution": sizes["img_resolution"]}}
    for name, module in (("G", generator), ("D", discriminator), ("G_ema", generator),
                         ("augment_pipe", None)):
        if module is not None:
            module = copy.deepcopy(module).eval().requires_grad_(False)
        snapshot[name] = module
    with open(path, "wb") as handle:
        pickle.dump(snapshot, handle)
    return path
