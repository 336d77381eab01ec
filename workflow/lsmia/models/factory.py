"""One factory for every architecture: lsmia's own, torchvision's (``tv:<name>``) and timm's."""

from __future__ import annotations

import os

import torch
from torch import nn

from . import small  # noqa: F401  (registers the demo architectures)
from .registry import architecture_builder, known_architectures
from .state_dicts import load_pretrained
from .torchvision_adapter import TorchvisionModel

TIMM_METHODS = ("forward_features", "forward_head", "get_classifier")


def create_model(arch: str, num_classes: int, pretrained: str | os.PathLike | None = None,
                 **arch_kwargs) -> nn.Module:
    """Build ``arch`` with a ``num_classes``-way classifier, randomly initialised or from
    ``pretrained`` (a state-dict file such as ImageNet weights, or an lsmia model file).

    ``arch`` is an lsmia name (``known_architectures()``), ``tv:<torchvision name>`` or a timm name.
    Every model maps [−1, 1] images to logits and has ``forward_features``, ``forward_head(x,
    pre_logits=False)`` and ``get_classifier()``.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes: expected a positive integer, got {num_classes!r}")
    builder = architecture_builder(arch)
    if builder is not None:
        model = builder(num_classes, **arch_kwargs)
    elif arch.startswith("tv:"):
        model = TorchvisionModel(arch[3:], num_classes, **arch_kwargs)
    else:
        import timm

        if not timm.is_model(arch):
            raise ValueError(f"unknown architecture {arch!r}: expected one of lsmia's "
                             f"{known_architectures()}, 'tv:<torchvision name>' or a timm name")
        model = timm.create_model(arch, pretrained=False, num_classes=num_classes, **arch_kwargs)
    missing = [name for name in TIMM_METHODS if not callable(getattr(model, name, None))]
    if missing:
        raise TypeError(f"architecture {arch!r} builds a {type(model).__name__} without {missing}")
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model


def penultimate(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pre-logit features (the classifier's input) of images ``x``."""
    return model.forward_head(model.forward_features(x), pre_logits=True)
