"""Generator priors behind one small protocol, and the registry that builds them by ``kind``.

A prior is a module that registers a builder with ``@register_prior(kind, required=…)`` and is
imported by ``lsmia.attacks``; ``load_generator(spec, device)`` looks the builder up by
``spec["kind"]``. The attack never knows which prior it has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from lsmia.registry import Registry


@runtime_checkable
class Generator(Protocol):
    """What the attack needs from an image prior.

    ``w_dim``: size of one style vector; ``num_ws``: style layers; ``image_size``: output side.
    ``sample_w(n, seed, psi, cutoff, draw)``: ``n×num_ws×w_dim`` latents from z = ``draw_z(n,
    z_dim, seed, draw)`` (``lsmia.attacks.latents``), mapped, and truncated towards the mean w by
    ``psi`` in the first ``cutoff`` layers (``None``: all layers).
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


@dataclass(frozen=True)
class Prior:
    """A registered prior: ``build(spec, device) -> Generator`` and the spec keys it needs."""

    build: Callable[[Mapping, torch.device], Generator]
    required: tuple[str, ...]


PRIORS: Registry[Prior] = Registry("generator")


def register_prior(kind: str, *, required: Iterable[str] = ()):
    """Decorator: register ``build(spec, device)`` as the prior ``kind`` (the spec's ``kind``)."""
    required = tuple(required)
    return PRIORS.register(kind, lambda build: Prior(build, required))


def load_generator(spec: Mapping, device: torch.device) -> Generator:
    """The prior ``spec`` names: ``{kind: procedural, image_size}``, ``{kind: stylegan2, checkout,
    pickle}`` or any other registered kind with its keys."""
    kind = spec.get("kind")
    prior = PRIORS.get(kind, f"generator spec {dict(spec)!r}", field="kind")
    missing = [key for key in prior.required if key not in spec]
    if missing:
        raise ValueError(f"generator spec {dict(spec)!r} (kind {kind!r}) is missing {missing}")
    return prior.build(spec, device)
