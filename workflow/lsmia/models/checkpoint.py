"""The model file: weights plus everything needed to rebuild the model without the config.

A model file is ``torch.save`` of ``{"format": "lsmia-model", "format_version": 1, "state_dict":
…, "meta": {...}}``. ``meta`` holds ``arch``, ``arch_kwargs``, ``num_classes``, ``input_size``,
``defence`` (a defence config or None) and whatever the caller records (recipe name and resolved
recipe, dataset, epoch, test accuracy); ``provenance`` is added when absent. Only plain containers,
strings and numbers are allowed in ``meta``, so files load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from lsmia.io import torch_save
from lsmia.provenance import provenance

from .factory import create_model
from .state_dicts import (DEFAULT_PREFIXES, MODEL_FORMAT, MODEL_FORMAT_VERSION, adapt_state_dict,
                          check_shapes, extract_state_dict, is_model_file, read_weights_file,
                          strip_wrapper_prefix)

log = logging.getLogger("lsmia.models")

REQUIRED_META = ("arch", "num_classes", "input_size")


def save_model(path: str | os.PathLike, model: nn.Module, meta: Mapping) -> None:
    """Write ``model``'s weights and ``meta`` to ``path`` atomically (see the module docstring)."""
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise ValueError(f"save_model({path}): meta lacks {missing} (needs {list(REQUIRED_META)})")
    record = {"arch_kwargs": {}, "defence": None, **meta}
    record.setdefault("provenance", provenance())
    _check_plain(record, "meta")
    model = getattr(model, "_orig_mod", model)  # torch.compile wrapper
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    torch_save({"format": MODEL_FORMAT, "format_version": MODEL_FORMAT_VERSION,
                "state_dict": state, "meta": record}, path)


def _check_plain(value, where: str) -> None:
    if value is None or isinstance(value, (str, bool, int, float)):
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string")
            _check_plain(item, f"{where}.{key}")
        return
    if isinstance(value, (list, tuple)):
        for position, item in enumerate(value):
            _check_plain(item, f"{where}[{position}]")
        return
    raise TypeError(f"{where}: {type(value).__name__} is not storable in a model file "
                    "(use str, int, float, bool, None, lists and dicts)")


def load_model(path: str | os.PathLike, device: torch.device | str = "cpu"
               ) -> tuple[nn.Module, dict]:
    """Rebuild the model saved at ``path`` (defence wrapper included) on ``device``, in eval
    mode; returns it with its ``meta``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no model file there (written by lsmia.models.save_model)")
    stored = read_weights_file(path)
    if not is_model_file(stored):
        raise ValueError(f"{path}: not an lsmia model file; for external checkpoints use "
                         "lsmia.models.import_checkpoint")
    if stored.get("format_version") != MODEL_FORMAT_VERSION:
        raise ValueError(f"{path}: model file format_version {stored.get('format_version')}, "
                         f"this code reads {MODEL_FORMAT_VERSION}")
    meta = stored["meta"]
    model = create_model(meta["arch"], meta["num_classes"], **meta.get("arch_kwargs", {}))
    if meta.get("defence"):
        from lsmia.defenses import wrap_defence

        model = wrap_defence(model, meta["defence"])
    try:
        model.load_state_dict(stored["state_dict"])
    except RuntimeError as err:
        raise ValueError(f"{path}: weights do not fit the rebuilt {meta['arch']}: {err}") from err
    device = torch.device(device)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model.eval(), meta


def import_checkpoint(path: str | os.PathLike, arch: str, num_classes: int, input_size: int,
                      arch_kwargs: Mapping | None = None,
                      strip_prefixes: Sequence[str] = DEFAULT_PREFIXES) -> nn.Module:
    """A model of ``arch`` with the weights of an external checkpoint (e.g. published targets).

    The file may hold a state dict or wrap one under ``state_dict``, ``model_state_dict`` or
    ``model``; ``strip_prefixes`` (default ``_orig_mod.`` and ``module.``) are removed from keys,
    then a classifier wrapper's ``model.`` (the authors' PPA ``Classifier``) when every key has it. Every tensor must fit, classifier included;
    a forward pass at ``input_size`` must give ``num_classes`` logits. Returned in eval mode on CPU.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint to import not found")
    state = extract_state_dict(read_weights_file(path), path, strip_prefixes)
    model = create_model(arch, num_classes, **dict(arch_kwargs or {}))
    state = adapt_state_dict(model, strip_wrapper_prefix(state, model.state_dict()))
    own = model.state_dict()
    check_shapes(state, own, f"{path}: tensors of the wrong shape for {arch} with {num_classes} "
                             "classes")
    result = model.load_state_dict(state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f"{path} does not fit {arch}: missing keys {result.missing_keys[:8]} "
                         f"({len(result.missing_keys)}), unexpected keys "
                         f"{result.unexpected_keys[:8]} ({len(result.unexpected_keys)}); "
                         f"prefixes removed: {list(strip_prefixes)}")
    model.eval()
    with torch.no_grad():
        logits = model(torch.zeros(1, 3, input_size, input_size))
    if tuple(logits.shape) != (1, num_classes):
        raise ValueError(f"{path}: imported {arch} gives outputs of shape {tuple(logits.shape)} "
                         f"at input size {input_size}, expected (1, {num_classes})")
    log.info("imported %s into %s (%d tensors)", path, arch, len(state))
    return model
