"""Training-time defences against model inversion: MID and BiDO-HSIC.

``wrap_defence(model, cfg)`` returns a module the trainer trains through
``forward_with_regulariser(x, y) -> (logits, extra_loss)``; its ``forward(x)`` gives logits, and it
keeps the timm methods ``forward_features``, ``forward_head`` and ``get_classifier``. The wrapper's
structure depends only on ``cfg`` and the base model, so ``load_model`` rebuilds it before loading.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from .bido import BiDOModel
from .mid import MIDModel, kl_to_standard_normal

__all__ = ["BiDOModel", "MIDModel", "kl_to_standard_normal", "parse_defence", "wrap_defence"]

REQUIRED = {"mid": {"beta"}, "bido": {"lambda_x", "lambda_y"}}
OPTIONAL = {"mid": {"bottleneck_dim"}, "bido": {"sigma", "layers", "label_kernel"}}


def _number(name: str, key: str, value, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ValueError(
            f"defence {name!r}: key {key!r} must be a number ≥ {minimum}, got {value!r}"
        )
    return float(value)


def parse_defence(cfg: Mapping | None) -> dict | None:
    """Check a defence config and return it normalised; ``None``/``{name: none}`` mean none."""
    if cfg is None:
        return None
    if not isinstance(cfg, Mapping) or "name" not in cfg:
        raise ValueError(f"a defence config must be a mapping with a 'name' key, got {cfg!r}")
    name = cfg["name"]
    if name in (None, "none"):
        if set(cfg) - {"name"}:
            raise ValueError(
                f"defence 'none' takes no other keys, got {sorted(set(cfg) - {'name'})}"
            )
        return None
    if name not in REQUIRED:
        raise ValueError(
            f"unknown defence name {name!r}; expected one of {sorted(REQUIRED)} or 'none'"
        )
    keys = set(cfg) - {"name"}
    missing, unknown = REQUIRED[name] - keys, keys - REQUIRED[name] - OPTIONAL[name]
    if missing or unknown:
        raise ValueError(
            f"defence {name!r}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}"
        )
    parsed = {"name": name}
    if name == "mid":
        parsed["beta"] = _number(name, "beta", cfg["beta"])
        dim = cfg.get("bottleneck_dim")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(
                f"defence 'mid': key 'bottleneck_dim' must be a positive integer, got {dim!r}"
            )
        parsed["bottleneck_dim"] = dim
        return parsed
    parsed["lambda_x"] = _number(name, "lambda_x", cfg["lambda_x"])
    parsed["lambda_y"] = _number(name, "lambda_y", cfg["lambda_y"])
    sigma = cfg.get("sigma", 5.0)
    parsed["sigma"] = _number(name, "sigma", sigma, minimum=1e-12)
    layers = cfg.get("layers")
    if layers is not None and (
        isinstance(layers, str)
        or not all(isinstance(layer, str) and layer for layer in layers)
        or not layers
    ):
        raise ValueError(
            f"defence 'bido': key 'layers' must be a non-empty list of module names, got {layers!r}"
        )
    parsed["layers"] = list(layers) if layers is not None else None
    parsed["label_kernel"] = cfg.get("label_kernel", "linear")
    return parsed


def wrap_defence(model: nn.Module, cfg: Mapping | None) -> nn.Module:
    """Wrap ``model`` for the defence ``cfg`` (``{name: mid, beta, bottleneck_dim}`` or
    ``{name: bido, lambda_x, lambda_y, sigma, layers, label_kernel}``); no defence: ``model``."""
    parsed = parse_defence(cfg)
    if parsed is None:
        return model
    if isinstance(model, (MIDModel, BiDOModel)):
        raise TypeError(
            f"the model is already wrapped by {type(model).__name__}; wrap the base model"
        )
    if parsed["name"] == "mid":
        return MIDModel(model, beta=parsed["beta"], bottleneck_dim=parsed["bottleneck_dim"])
    return BiDOModel(
        model,
        lambda_x=parsed["lambda_x"],
        lambda_y=parsed["lambda_y"],
        sigma=parsed["sigma"],
        layers=parsed["layers"],
        label_kernel=parsed["label_kernel"],
    )
