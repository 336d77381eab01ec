"""Run names, the one place that builds and reads them.

A run is a recipe of the config trained on the first ``size`` images of the seeded training
permutation (``<recipe>-n<size>``, all images when absent) with a replicate seed of ``seeds``
(``-s<seed>``, absent for the first seed, whose runs keep the plain paths): ``ls0.1-n2500-s43``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

_SEED = re.compile(r"^(?P<base>.+)-s(?P<seed>[0-9]+)$")
_SIZE = re.compile(r"^(?P<base>.+)-n(?P<size>[0-9]+)$")
STAGES = ("sample", "optimise", "select")


class RunNameError(ValueError):
    """A run name that no configured recipe explains."""


@dataclass(frozen=True)
class RunName:
    """A run name's parts: the config recipe, the training-set size (None: all images) and the
    replicate seed (None: the first of ``seeds``)."""

    recipe: str
    size: int | None = None
    seed: int | None = None

    def __str__(self) -> str:
        return run_name(self.recipe, self.size, self.seed)


def run_name(recipe: str, size: int | None = None, seed: int | None = None) -> str:
    """``<recipe>[-n<size>][-s<seed>]``; ``seed`` None for the first seed's run."""
    sized = recipe if size is None else f"{recipe}-n{size}"
    return sized if seed is None else f"{sized}-s{seed}"


def replicate_name(recipe: str, size: int | None, seed: int, first_seed: int) -> str:
    """The run of ``recipe`` at ``size`` with replicate ``seed``: plain for ``first_seed``."""
    return run_name(recipe, size, None if seed == first_seed else seed)


def parse_run_name(name: str, recipes: Collection[str]) -> RunName:
    """The parts of ``name`` (a recipe of ``recipes``, or one with ``-n<N>`` and/or ``-s<seed>``)."""
    if name in recipes:
        return RunName(name)
    seeded = _SEED.match(name)
    if seeded:
        return replace(parse_run_name(seeded["base"], recipes), seed=int(seeded["seed"]))
    sized = _SIZE.match(name)
    if sized and sized["base"] in recipes:
        return RunName(sized["base"], size=int(sized["size"]))
    raise RunNameError(
        f"unknown recipe {name!r}: expected one of {sorted(recipes)}, '<recipe>-n<N>' for a limited "
        "training set or '<recipe>[-n<N>]-s<seed>' for another seed"
    )


def looks_derived(name: str) -> bool:
    """Whether ``name`` ends like a derived run (``-n<N>`` or ``-s<seed>``): no recipe may."""
    return bool(_SIZE.match(name) or _SEED.match(name))


def alternatives(names: Iterable[str]) -> str:
    """A regular expression matching any of ``names`` exactly (longest first, escaped)."""
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


def run_name_pattern(recipes: Iterable[str]) -> str:
    """A regular expression matching every run name of ``recipes`` (wildcard constraints)."""
    return f"(?:{alternatives(recipes)})(?:-n[0-9]+)?(?:-s[0-9]+)?"


def stage_swaps(baseline: str, other: str) -> list[tuple[str, str, str]]:
    """The attacks on ``baseline`` with one stage's model swapped for ``other``, in the order
    sample, optimise, select: (sample, optimise, select) triples of runs (names or records)."""
    return [tuple(other if i == j else baseline for j in range(3)) for i in range(3)]
