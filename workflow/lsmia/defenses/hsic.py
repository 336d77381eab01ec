"""Kernels and the Hilbert–Schmidt independence criterion (HSIC) used by BiDO.

All functions take kernel (Gram) matrices or ``N×D`` feature matrices and work on any device.
Kernels are computed in float32 whatever the autocast state, because the normalised estimator
solves a linear system.
"""

from __future__ import annotations

import torch

NORMALISED_EPSILON = 1e-5  # ridge ε of the normalised estimator, as in the BiDO reference code


def _as_matrix(x: torch.Tensor) -> torch.Tensor:
    if x.dim() < 2:
        raise ValueError(
            f"expected a batch of features with shape N×..., got shape {tuple(x.shape)}"
        )
    return x.reshape(x.shape[0], -1).float()


def squared_distances(x: torch.Tensor) -> torch.Tensor:
    """Pairwise squared Euclidean distances between the rows of ``x`` (flattened to N×D)."""
    x = _as_matrix(x)
    norms = (x * x).sum(dim=1)
    return (norms[:, None] + norms[None, :] - 2.0 * x @ x.T).clamp_min(0.0)


def gaussian_kernel(x: torch.Tensor, sigma: float | None) -> torch.Tensor:
    """Gaussian kernel ``exp(−‖xᵢ−xⱼ‖² / (2σ²·D))`` on the rows of ``x`` (flattened to N×D).

    A float ``sigma`` is a per-dimension width, so one value suits layers of any size (the BiDO
    reference uses σ = 5 this way). ``None`` uses the median heuristic instead: the squared width
    is the median of the off-diagonal squared distances, ``exp(−‖xᵢ−xⱼ‖² / (2·median))``.
    """
    distances = squared_distances(x)
    if sigma is None:
        n = distances.shape[0]
        if n < 2:
            raise ValueError("the median heuristic needs at least two samples")
        off_diagonal = distances[~torch.eye(n, dtype=torch.bool, device=distances.device)]
        scale = 2.0 * off_diagonal.detach().median().clamp_min(1e-12)
    else:
        if sigma <= 0:
            raise ValueError(f"sigma must be positive or None (median heuristic), got {sigma!r}")
        scale = 2.0 * float(sigma) ** 2 * _as_matrix(x).shape[1]
    return torch.exp(-distances / scale)


def linear_kernel(x: torch.Tensor) -> torch.Tensor:
    """Linear kernel ``xᵢ·xⱼ`` on the rows of ``x`` (flattened to N×D)."""
    x = _as_matrix(x)
    return x @ x.T


def centre(kernel: torch.Tensor) -> torch.Tensor:
    """Double-centred kernel ``H K H`` with ``H = I − 11ᵀ/n``."""
    return (
        kernel - kernel.mean(dim=0, keepdim=True) - kernel.mean(dim=1, keepdim=True) + kernel.mean()
    )


def _check_pair(k: torch.Tensor, l: torch.Tensor) -> int:
    if k.dim() != 2 or k.shape[0] != k.shape[1] or k.shape != l.shape:
        raise ValueError(
            f"expected two n×n kernel matrices, got {tuple(k.shape)} and {tuple(l.shape)}"
        )
    n = k.shape[0]
    if n < 2:
        raise ValueError("HSIC needs at least two samples")
    return n


def hsic(k: torch.Tensor, l: torch.Tensor) -> torch.Tensor:
    """Biased HSIC estimator ``tr(K H L H) / (n − 1)²`` (Gretton et al., 2005)."""
    n = _check_pair(k, l)
    return (centre(k.float()) * l.float().T).sum() / (n - 1) ** 2


def normalised_hsic(
    k: torch.Tensor, l: torch.Tensor, epsilon: float = NORMALISED_EPSILON
) -> torch.Tensor:
    """Normalised HSIC ``tr(R_K R_L)`` with ``R_K = K̃ (K̃ + ε n I)⁻¹`` and ``K̃ = H K H``.

    This is the estimator BiDO trains with (the normalised cross-covariance operator of Fukumizu
    et al., 2008). The reference code centres on one side only (``K H``); the value is the same,
    because ``K H`` and ``H K H`` differ only on the constant vector, which ``H`` removes.
    """
    n = _check_pair(k, l)
    ridge = epsilon * n * torch.eye(n, device=k.device, dtype=torch.float32)

    def resolvent(kernel: torch.Tensor) -> torch.Tensor:
        centred = centre(kernel.float())
        # K̃ and (K̃ + εnI)⁻¹ commute, so K̃ (K̃ + εnI)⁻¹ = (K̃ + εnI)⁻¹ K̃ = solve(K̃ + εnI, K̃).
        return torch.linalg.solve(centred + ridge, centred)

    return (resolvent(k) * resolvent(l).T).sum()
