"""The names of lsmia's own architectures (``create_model`` looks them up here)."""

from __future__ import annotations

from typing import Callable

from torch import nn

_ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str):
    """Decorator: make ``builder(num_classes, **kwargs) -> nn.Module`` available as ``name``."""

    def register(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _ARCHITECTURES and _ARCHITECTURES[name] is not builder:
            raise ValueError(f"architecture {name!r} is already registered "
                             f"(by {_ARCHITECTURES[name].__qualname__})")
        if name.startswith("tv:"):
            raise ValueError(f"architecture {name!r}: the prefix 'tv:' is reserved for torchvision")
        _ARCHITECTURES[name] = builder
        return builder

    return register


def known_architectures() -> list[str]:
    """Names of the architectures registered with lsmia (not timm's or torchvision's)."""
    return sorted(_ARCHITECTURES)


def architecture_builder(name: str) -> Callable[..., nn.Module] | None:
    return _ARCHITECTURES.get(name)
