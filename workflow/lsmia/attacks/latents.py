"""Latent helpers every generator prior shares: the z draw, broadcasting w, truncation."""

from __future__ import annotations

import numpy as np
import torch

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
