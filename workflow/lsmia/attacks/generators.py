"""Generator priors behind one small protocol; the attack never knows which one it has."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class Generator(Protocol):
    """What the attack needs from an image prior.

    ``w_dim``: size of one style vector; ``num_ws``: style layers; ``image_size``: output side.
    ``sample_w(n, seed, psi, cutoff, draw)``: ``n×num_ws×w_dim`` latents from z = ``draw_z(n,
    z_dim, seed, draw)``, mapped, and truncated towards the mean w by ``psi`` in the first ``cutoff`` layers
    (``None``: all layers).
    ``synthesise(w)``: differentiable images ``N×3×S×S``, nominally in [−1, 1] (not clipped), from
    ``N×num_ws×w_dim`` latents or ``N×w_dim`` ones broadcast to every layer.
    """

    w_dim: int
    num_ws: int
    image_size: int

    def sample_w(
        self, n: int, seed: int, psi: float, cutoff: int | None, draw: str = "numpy"
    ) -> torch.Tensor: ...

    def synthesise(self, w: torch.Tensor) -> torch.Tensor: ...


LATENT_DRAWS = ("numpy", "torch")


def draw_z(n: int, z_dim: int, seed: int, method: str = "numpy") -> torch.Tensor:
    """The search space's z as float32. ``numpy``: the authors' draw,
    ``numpy.random.RandomState(seed).randn(n, z_dim)`` (StyleGAN2's mapping casts to float32 too),
    so the same seed and ``ffhq.pkl`` give the authors' own candidates; ``torch``: ``torch.randn``
    from a CPU ``torch.Generator`` seeded ``seed``."""
    if method == "numpy":
        return torch.from_numpy(np.random.RandomState(seed).randn(n, z_dim)).float()
    if method == "torch":
        return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    raise ValueError(f"draw_z: method {method!r} is not one of {list(LATENT_DRAWS)}")


def broadcast_w(w: torch.Tensor, num_ws: int) -> torch.Tensor:
    """``N×w_dim`` → ``N×num_ws×w_dim`` (a view); ``N×num_ws×w_dim`` is returned as is."""
    if w.dim() == 2:
        return w.unsqueeze(1).expand(-1, num_ws, -1)
    if w.dim() == 3 and w.shape[1] == num_ws:
        return w
    raise ValueError(f"latents must be N×w_dim or N×{num_ws}×w_dim, got shape {tuple(w.shape)}")


def truncate(w: torch.Tensor, w_mean: torch.Tensor, psi: float, cutoff: int | None) -> torch.Tensor:
    """Move the first ``cutoff`` layers of ``N×num_ws×w_dim`` latents towards ``w_mean``:
    ``w_mean + psi·(w − w_mean)``."""
    layers = w.shape[1] if cutoff is None else min(int(cutoff), w.shape[1])
    truncated = w.clone()
    truncated[:, :layers] = w_mean + psi * (w[:, :layers] - w_mean)
    return truncated


class ProceduralFacePrior:
    """The demo's public face renderer (``lsmia.data.synthetic.FaceModel``) as a generator prior.

    w = concat(identity code, nuisance code), one style layer, mapping = identity, mean w = 0, so
    truncation gives ψ·z. The attacker knows only this N(0, I) distribution, never the private
    identity codes of the target's training set. Its z is drawn as StyleGAN2's is (``draw_z``), so
    a seed means the same draw for both priors.
    """

    num_ws = 1

    def __init__(self, image_size: int, device: torch.device):
        from lsmia.data.synthetic import FaceModel

        if int(image_size) < 8:
            raise ValueError(f"procedural prior: image_size must be at least 8, got {image_size}")
        self.model = FaceModel()
        self.image_size = int(image_size)
        self.device = torch.device(device)
        self.identity_dim = self.model.identity_dim
        self.w_dim = self.model.identity_dim + self.model.nuisance_dim

    def sample_w(
        self, n: int, seed: int, psi: float = 1.0, cutoff: int | None = None, draw: str = "numpy"
    ) -> torch.Tensor:
        z = draw_z(n, self.w_dim, seed, draw)[:, None]
        return truncate(z, torch.zeros(self.w_dim), psi, cutoff).to(self.device)

    def synthesise(self, w: torch.Tensor) -> torch.Tensor:
        w = broadcast_w(w, self.num_ws)[:, 0]
        identity, nuisance = w[:, : self.identity_dim], w[:, self.identity_dim :]
        return self.model.render(identity, nuisance, self.image_size)


def load_generator(spec: dict, device: torch.device) -> Generator:
    """``{kind: procedural, image_size}`` or ``{kind: stylegan2, checkout, pickle}``."""
    kind = spec.get("kind")
    if kind == "procedural":
        _require(spec, ("image_size",))
        return ProceduralFacePrior(int(spec["image_size"]), device)
    if kind == "stylegan2":
        from lsmia.attacks.stylegan2 import StyleGAN2Prior

        _require(spec, ("checkout", "pickle"))
        return StyleGAN2Prior(spec["checkout"], spec["pickle"], device)
    raise ValueError(f"generator spec: kind must be 'procedural' or 'stylegan2', got {kind!r}")


def _require(spec: dict, keys: tuple[str, ...]) -> None:
    missing = [key for key in keys if key not in spec]
    if missing:
        raise ValueError(f"generator spec {spec!r} (kind {spec['kind']!r}) is missing {missing}")
