"""Reading weight files (lsmia model files, plain or wrapped state dicts) and pre-trained init."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger("lsmia.models")

MODEL_FORMAT = "lsmia-model"
MODEL_FORMAT_VERSION = 1
WRAPPER_KEYS = ("state_dict", "model_state_dict", "model")
DEFAULT_PREFIXES = ("_orig_mod.", "module.")
#: Attribute names under which classifier wrappers keep the network (the PPA code's
#: ``Classifier.model``); removed only when every key has one and the model's keys do not.
WRAPPER_PREFIXES = ("model.",)


def read_weights_file(path: str | os.PathLike) -> object:
    """``torch.load`` on CPU with ``weights_only=True`` (no arbitrary code from foreign files).

    An empty, truncated or foreign file raises ValueError naming the path and what it is."""
    problem = _not_a_torch_file(Path(path))
    if problem:
        raise ValueError(f"{path}: {problem}; an interrupted copy, or not a weights file? "
                         "Delete it and rebuild it (or fetch it again)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ValueError(f"{path}: not loadable as plain tensors and containers (it holds Python "
                         f"objects; re-save only its state dict): {err}") from err
    except (RuntimeError, EOFError) as err:
        raise ValueError(f"{path}: a damaged torch.save archive ({str(err).splitlines()[0]}); "
                         "delete it and rebuild it") from err


def _not_a_torch_file(path: Path) -> str | None:
    """Why ``path`` cannot be a ``torch.save`` file (zip archive, or legacy pickle), if it cannot."""
    if not path.is_file():
        return None  # torch.load names a missing file itself
    size = path.stat().st_size
    if size == 0:
        return "empty file (0 bytes)"
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head == b"PK\x03\x04" or head[:1] == b"\x80":
        return None
    return f"not a torch.save file ({size} bytes starting {head!r})"


def is_model_file(obj: object) -> bool:
    return isinstance(obj, Mapping) and obj.get("format") == MODEL_FORMAT


def extract_state_dict(obj: object, path: str | os.PathLike,
                       strip_prefixes: Sequence[str] = DEFAULT_PREFIXES) -> dict[str, torch.Tensor]:
    """The tensors of an lsmia model file or of a state dict, unwrapped from ``{'state_dict' |
    'model_state_dict' | 'model': ...}`` and with ``strip_prefixes`` removed from every key."""
    if is_model_file(obj):
        obj = obj["state_dict"]
    while isinstance(obj, Mapping) and not _is_tensor_mapping(obj):
        wrapped = [key for key in WRAPPER_KEYS if isinstance(obj.get(key), Mapping)]
        if not wrapped:
            raise ValueError(f"{path}: neither a state dict nor a dict wrapping one under "
                             f"{list(WRAPPER_KEYS)}; top-level keys: {sorted(obj)[:10]}")
        obj = obj[wrapped[0]]
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{path}: expected a non-empty state dict, got {type(obj).__name__}")
    state = {}
    for key, tensor in obj.items():
        stripped = _strip(key, strip_prefixes)
        if stripped in state:
            raise ValueError(f"{path}: keys collide after removing prefixes "
                             f"{list(strip_prefixes)}: {stripped!r}")
        state[stripped] = tensor
    return state


def strip_wrapper_prefix(state: dict[str, torch.Tensor], own_keys) -> dict[str, torch.Tensor]:
    """``state`` without a wrapper's attribute prefix (:data:`WRAPPER_PREFIXES`), when every key
    carries it and none of ``own_keys`` (the receiving model's) does; else ``state`` unchanged."""
    own_keys = list(own_keys)
    for prefix in WRAPPER_PREFIXES:
        if all(key.startswith(prefix) for key in state) and not any(
                key.startswith(prefix) for key in own_keys):
            return {key[len(prefix):]: value for key, value in state.items()}
    return state


def _is_tensor_mapping(obj: Mapping) -> bool:
    return bool(obj) and all(isinstance(value, torch.Tensor) for value in obj.values())


def _strip(key: str, prefixes: Sequence[str]) -> str:
    changed = True
    while changed:
        changed = False
        for prefix in prefixes:
            if key.startswith(prefix):
                key, changed = key[len(prefix):], True
    return key


def adapt_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Apply the model's own key conversion for published weight files, if it has one."""
    adapt = getattr(model, "adapt_state_dict", None)
    return adapt(state) if callable(adapt) else state


def classifier_keys(model: nn.Module) -> set[str]:
    """State-dict keys of ``model.get_classifier()`` and of its ``auxiliary_classifier()`` if it has
    one (Inception-v3's ``AuxLogits.fc``); empty when they have no parameters."""
    auxiliary = getattr(model, "auxiliary_classifier", lambda: None)()
    heads = [head for head in (model.get_classifier(), auxiliary) if head is not None]
    keys = set()
    for head in heads:
        name = next((name for name, module in model.named_modules() if module is head), None)
        if name is None:
            raise ValueError(f"{type(model).__name__}: classifier {type(head).__name__} is not a "
                             "submodule of the model")
        prefix = f"{name}." if name else ""
        keys |= {prefix + key for key in head.state_dict()}
    return keys


def check_shapes(state: Mapping[str, torch.Tensor], own: Mapping[str, torch.Tensor],
                 problem: str) -> None:
    """Raise ``ValueError(problem: ...)`` listing (up to five) tensors of ``state`` whose shape
    differs from the model's ``own`` tensor of that name."""
    mis_shaped = [f"{key} {tuple(value.shape)} vs model {tuple(own[key].shape)}"
                  for key, value in state.items() if key in own and value.shape != own[key].shape]
    if mis_shaped:
        raise ValueError(f"{problem}: {mis_shaped[:5]}")


def load_pretrained(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Initialise ``model`` from a state dict (e.g. ImageNet weights) or an lsmia model file.

    Keys are first converted by the model's ``adapt_state_dict`` if it has one (torchvision's
    published DenseNet and Inception files). Classifier tensors whose shape differs (another number
    of classes) are dropped and logged; any other missing, unexpected or mis-shaped key is an error
    naming the keys.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: run `snakemake fetch_weights` on a machine with internet "
            "(it stores ImageNet weights under resources/weights/)"
        )
    state = adapt_state_dict(model, extract_state_dict(read_weights_file(path), path))
    own = model.state_dict()
    head = classifier_keys(model)
    dropped = sorted(key for key in state if key in head and state[key].shape != own[key].shape)
    if dropped:
        log.info("%s: not loading classifier tensors of another shape: %s", path, dropped)
    state = {key: value for key, value in state.items() if key not in dropped}
    check_shapes(state, own, f"{path}: tensors of the wrong shape for {type(model).__name__}")
    result = model.load_state_dict(state, strict=False)
    missing = sorted(set(result.missing_keys) - head)
    if missing or result.unexpected_keys:
        raise ValueError(f"{path} does not fit {type(model).__name__}: missing keys {missing[:8]} "
                         f"({len(missing)}), unexpected keys {sorted(result.unexpected_keys)[:8]} "
                         f"({len(result.unexpected_keys)})")
    if result.missing_keys:
        log.info("%s: classifier left at its initialisation: %s", path, sorted(result.missing_keys))
    return model
