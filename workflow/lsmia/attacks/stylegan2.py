"""StyleGAN2-ADA generator prior from a user-provided NVlabs ``stylegan2-ada-pytorch`` checkout.

The network pickle references the checkout's ``dnnlib`` and ``torch_utils`` modules, so the
checkout must be importable to unpickle it. Its custom CUDA ops (``bias_act``, ``upfirdn2d``) compile
on first use and silently fall back to a slow reference implementation when compiling fails; the first
synthesis checks for that and warns loudly.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pickle
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from lsmia.attacks.generators import register_prior
from lsmia.attacks.latents import broadcast_w, draw_z

log = logging.getLogger(__name__)

FETCH_RULE = "snakemake fetch_stylegan2"
CUSTOM_OP_MODULES = ("torch_utils.ops.bias_act", "torch_utils.ops.upfirdn2d")
GENERATOR_ATTRIBUTES = ("mapping", "synthesis", "z_dim", "w_dim", "num_ws", "img_resolution")


class StyleGAN2Prior:
    """The ``G_ema`` network of a StyleGAN2-ADA pickle behind the generator protocol.

    ``sample_w`` maps z = ``numpy.random.RandomState(seed).randn(n, z_dim)`` through ``G.mapping(z, c, truncation_psi, truncation_cutoff)``
    (truncation towards ``G.mapping.w_avg``); ``synthesise`` runs
    ``G.synthesis(ws, noise_mode='const', force_fp32=True)``. Outputs are not clipped.
    """

    def __init__(self, checkout_dir: str | Path, pickle_path: str | Path, device: torch.device):
        self.device = torch.device(device)
        self.checkout_dir = Path(checkout_dir)
        self.pickle_path = Path(pickle_path)
        put_ninja_on_path()
        self.G = _load_g_ema(self.checkout_dir, self.pickle_path).to(self.device)
        self.G.eval().requires_grad_(False)
        self.w_dim = int(self.G.w_dim)
        self.num_ws = int(self.G.num_ws)
        self.image_size = int(self.G.img_resolution)
        self.z_dim = int(self.G.z_dim)
        self.c_dim = int(getattr(self.G, "c_dim", 0))
        self._ops_checked = False

    @torch.no_grad()
    def sample_w(
        self, n: int, seed: int, psi: float = 1.0, cutoff: int | None = None,
        draw: str = "numpy", chunk: int = 1024,
    ) -> torch.Tensor:
        """``n×num_ws×w_dim`` latents from z = ``draw_z(n, z_dim, seed, draw)`` (``numpy``: the
        authors' draw)."""
        z = draw_z(n, self.z_dim, seed, draw)
        ws = []
        for start in range(0, n, chunk):
            z_chunk = z[start : start + chunk].to(self.device)
            c = torch.zeros(len(z_chunk), self.c_dim, device=self.device)
            ws.append(
                self.G.mapping(z_chunk, c, truncation_psi=psi, truncation_cutoff=cutoff).float()
            )
        return torch.cat(ws)

    def synthesise(self, w: torch.Tensor) -> torch.Tensor:
        """Images (nominally [−1, 1], unclipped) from ``N×w_dim`` or ``N×num_ws×w_dim`` latents."""
        images = self.G.synthesis(
            broadcast_w(w, self.num_ws), noise_mode="const", force_fp32=True
        )
        if not self._ops_checked:
            self._ops_checked = True
            warn_if_custom_ops_fell_back()
        return images


@register_prior("stylegan2", required=("checkout", "pickle"))
def stylegan2_prior(spec: Mapping, device: torch.device) -> StyleGAN2Prior:
    """``{kind: stylegan2, checkout, pickle}``: the NVlabs checkout folder and network pickle."""
    return StyleGAN2Prior(spec["checkout"], spec["pickle"], device)


def put_ninja_on_path() -> None:
    """The custom ops build with ``ninja`` (a pinned requirement, installed into the environment's
    ``bin/``); put that folder on ``PATH`` when the environment was not activated."""
    scripts = Path(sys.executable).parent
    path = os.environ.get("PATH", "")
    if (scripts / "ninja").is_file() and str(scripts) not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(scripts), path]) if path else str(scripts)


def warn_if_custom_ops_fell_back() -> list[str]:
    """Warn (logging and ``warnings``) for every custom op that tried to build and fell back.

    A module fell back when it ran its one-time initialisation (``_inited``) and has no compiled
    ``_plugin``. On CPU the ops never initialise (the reference code is the only path there).
    Returns the names of the modules that fell back.
    """
    fell_back = []
    for name in CUSTOM_OP_MODULES:
        module = sys.modules.get(name)
        if module is not None and getattr(module, "_inited", False) and module._plugin is None:
            fell_back.append(name)
    if fell_back:
        message = (
            f"StyleGAN2 custom CUDA ops failed to build and fell back to the slow reference "
            f"implementation ({', '.join(fell_back)}): the attack will run several times slower. "
            "Check that nvcc and a C++ compiler matching this PyTorch build are on PATH "
            "(the checkout's torch_utils/custom_ops.py prints the build error)."
        )
        log.warning(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)
    return fell_back


def _load_g_ema(checkout_dir: Path, pickle_path: Path) -> torch.nn.Module:
    if not (checkout_dir / "dnnlib").is_dir() or not (checkout_dir / "torch_utils").is_dir():
        raise FileNotFoundError(
            f"StyleGAN2-ADA checkout not found at {checkout_dir} (expected its dnnlib/ and "
            f"torch_utils/ folders); `{FETCH_RULE}` fetches it"
        )
    if not pickle_path.is_file():
        raise FileNotFoundError(
            f"StyleGAN2-ADA network pickle not found: {pickle_path} "
            f"(e.g. ffhq.pkl; `{FETCH_RULE}` fetches it)"
        )
    checkout = str(checkout_dir.resolve())
    if checkout not in sys.path:
        sys.path.insert(0, checkout)
    data = _unpickle(checkout_dir, pickle_path)
    if not isinstance(data, dict) or "G_ema" not in data:
        keys = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"{pickle_path}: expected a dict with key 'G_ema', got {keys}")
    generator = data["G_ema"]
    missing = [attr for attr in GENERATOR_ATTRIBUTES if not hasattr(generator, attr)]
    if not isinstance(generator, torch.nn.Module) or missing:
        raise ValueError(
            f"{pickle_path}: 'G_ema' is not a StyleGAN2 generator ({type(generator).__name__}, "
            f"missing {missing or 'nn.Module'})"
        )
    return generator


def _unpickle(checkout_dir: Path, pickle_path: Path):
    with open(pickle_path, "rb") as handle:
        try:
            if not (checkout_dir / "legacy.py").is_file():
                return pickle.load(handle)
            return _import_legacy(checkout_dir).load_network_pkl(handle)
        except ModuleNotFoundError as err:
            raise ValueError(
                f"{pickle_path}: needs module {err.name!r}, which the checkout {checkout_dir} "
                "does not provide (a pickle from another StyleGAN version?)"
            ) from err
        except (pickle.UnpicklingError, AssertionError, KeyError, TypeError, EOFError) as err:
            raise ValueError(
                f"{pickle_path}: not a StyleGAN2-ADA network pickle with 'G_ema' "
                f"({type(err).__name__}: {err})"
            ) from err


def _import_legacy(checkout_dir: Path):
    """The checkout's own ``legacy`` module, not one another checkout left in ``sys.modules``."""
    path = (checkout_dir / "legacy.py").resolve()
    loaded = sys.modules.get("legacy")
    if loaded is not None and Path(getattr(loaded, "__file__", "")).resolve() == path:
        return loaded
    spec = importlib.util.spec_from_file_location("legacy", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["legacy"] = module
    spec.loader.exec_module(module)
    return module
