"""The names of lsmia's own architectures (``create_model`` looks them up here)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from lsmia.registry import Registry

ARCHITECTURES: Registry[Callable[..., nn.Module]] = Registry("architecture")


def register_architecture(name: str):
    """Decorator: make ``builder(num_classes, **kwargs) -> nn.Module`` available as ``name``."""
    if name.startswith("tv:"):
        raise ValueError(f"architecture {name!r}: the prefix 'tv:' is reserved for torchvision")
    return ARCHITECTURES.register(name)


def known_architectures() -> list[str]:
    """Names of the architectures registered with lsmia (not timm's or torchvision's)."""
    return ARCHITECTURES.names()


def architecture_builder(name: str) -> Callable[..., nn.Module] | None:
    return ARCHITECTURES.find(name)
