"""The defence registry and the two calls everyone uses: ``parse_defence`` and ``wrap_defence``.

A defence is an ``nn.Module`` wrapper class registered with ``@register_defence(name, required=…,
optional=…, settings=…)`` in its own module (imported by ``lsmia.defenses``); ``settings`` turns a
config whose keys were checked into the wrapper's keyword arguments (values checked, defaults
filled), and ``wrapper(base, **settings)`` builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from lsmia.registry import Registry


@dataclass(frozen=True)
class Defence:
    """A registered defence: its wrapper class, its config keys and its settings parser."""

    wrapper: type
    required: frozenset[str]
    optional: frozenset[str]
    settings: Callable[[Mapping], dict]


DEFENCES: Registry[Defence] = Registry("defence")


def register_defence(
    name: str,
    *,
    required: Iterable[str],
    optional: Iterable[str] = (),
    settings: Callable[[Mapping], dict],
):
    """Class decorator: register the wrapper as the defence ``name`` (the config's ``name``)."""
    keys = frozenset(required), frozenset(optional)
    return DEFENCES.register(name, lambda wrapper: Defence(wrapper, *keys, settings))


def check_number(name: str, key: str, value, minimum: float = 0.0) -> float:
    """``value`` as a float ≥ ``minimum``; otherwise a ``ValueError`` naming defence and key."""
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
    defence = DEFENCES.get(name, f"defence config {dict(cfg)!r}", also=" or 'none'")
    keys = set(cfg) - {"name"}
    missing = defence.required - keys
    unknown = keys - defence.required - defence.optional
    if missing or unknown:
        raise ValueError(
            f"defence {name!r}: missing keys {sorted(missing)}, unknown keys {sorted(unknown)}"
        )
    return {"name": name, **defence.settings(cfg)}


def wrap_defence(model, cfg: Mapping | None):
    """Wrap the ``nn.Module`` ``model`` for the defence ``cfg`` (see ``parse_defence``); no
    defence: ``model`` itself."""
    parsed = parse_defence(cfg)
    if parsed is None:
        return model
    wrappers = tuple(defence.wrapper for defence in DEFENCES.entries())
    if isinstance(model, wrappers):
        raise TypeError(
            f"the model is already wrapped by {type(model).__name__}; wrap the base model"
        )
    settings = {key: value for key, value in parsed.items() if key != "name"}
    return DEFENCES.get(parsed["name"], "wrap_defence").wrapper(model, **settings)
