"""Named registries: defences, generator priors and attack stages are looked up by name, not by
if-chains (timm's ``register_model`` is the model). Imports nothing heavy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Entries by name; ``what`` (e.g. ``"defence"``) names them in errors."""

    def __init__(self, what: str):
        self.what = what
        self._entries: dict[str, Entry] = {}

    def add(self, name: str, entry: Entry) -> Entry:
        """Register ``entry`` as ``name``; another entry under a taken name is an error."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.what} needs a non-empty string name, got {name!r}")
        if name in self._entries and self._entries[name] != entry:
            raise ValueError(
                f"{self.what} {name!r} is already registered (by {self._entries[name]!r})"
            )
        self._entries[name] = entry
        return entry

    def register(self, name: str, entry: Callable[[Any], Entry] | None = None) -> Callable:
        """Decorator form of ``add``: registers ``entry(obj)`` (``obj`` itself without ``entry``)
        and returns the decorated ``obj``."""

        def decorate(obj):
            self.add(name, obj if entry is None else entry(obj))
            return obj

        return decorate

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        """The entries, in name order."""
        return [self._entries[name] for name in self.names()]

    def find(self, name) -> Entry | None:
        """The entry ``name``, or None when there is none."""
        return self._entries.get(name)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def get(self, name, where: str, field: str = "name", also: str = "") -> Entry:
        """The entry ``name``; an unknown one raises ``ValueError`` naming ``where`` (the config or
        caller), the ``field`` that holds the name, its value and the known names (``also``: other
        accepted values, e.g. ``" or 'none'"``)."""
        if name not in self._entries:
            raise ValueError(
                f"{where}: unknown {self.what} {field} {name!r}; "
                f"{field} must be one of {self.names()}{also}"
            )
        return self._entries[name]
