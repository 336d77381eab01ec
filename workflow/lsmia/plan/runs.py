"""The plan's records: runs (what is trained), attacks (the run each stage uses), the files of a
row, and ``RunMaker``, which makes them for an artefact's selector (``lsmia.plan.artefacts``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lsmia.config import resolve_recipe
from lsmia.plan.layout import Layout
from lsmia.plan.names import parse_run_name, replicate_name, run_name, stage_swaps


@dataclass(frozen=True)
class Run:
    """One trained target model: ``name`` is its path component, ``recipe`` the resolved one."""

    dataset: str
    architecture: str
    recipe: str
    size: int | None
    seed: int
    name: str
    resolved: Mapping = field(compare=False, repr=False, default_factory=dict)

    @property
    def label(self) -> str:
        """The run as tables show it: its name without the seed (seeds have their column)."""
        return run_name(self.recipe, self.size)


@dataclass(frozen=True)
class Attack:
    """One attack: the target run whose model each stage (sample, optimise, select) uses."""

    sample: Run
    optimise: Run
    select: Run

    @property
    def stages(self) -> tuple[Run, Run, Run]:
        return (self.sample, self.optimise, self.select)

    @property
    def dataset(self) -> str:
        return self.sample.dataset

    @property
    def architecture(self) -> str:
        return self.sample.architecture

    @property
    def seed(self) -> int:
        return self.sample.seed

    @property
    def target(self) -> Run | None:
        """The run all three stages attack, or None for a stage-swap attack."""
        return self.sample if self.sample == self.optimise == self.select else None


@dataclass(frozen=True)
class RowFiles:
    """The files one row of an artefact is read from (``lsmia.paper.collect``)."""

    attack: Attack
    attack_metrics: str
    target_metrics: str | None = None
    knowledge: str | None = None


def row_files(attack: Attack, layout: Layout, knowledge: bool) -> RowFiles:
    names = [run.name for run in attack.stages]
    target = attack.target
    where = (attack.dataset, attack.architecture)
    return RowFiles(
        attack,
        layout.attack_metrics(*where, *names),
        layout.target_metrics(*where, target.name) if target else None,
        layout.knowledge(*where, target.name) if target and knowledge else None,
    )


class RunMaker:
    """Runs and attacks of the config for one artefact's seeds (what the selectors call)."""

    def __init__(self, config: Mapping, seeds: Sequence[int]):
        self.config, self.seeds = config, tuple(seeds)
        self.first_seed = config["seeds"][0]

    def run(self, dataset: str, architecture: str, label: str, seed: int) -> Run:
        parts = parse_run_name(label, self.config["recipes"])
        if parts.seed is not None:
            raise ValueError(f"run {label!r} in 'artefacts': name recipes without '-s<seed>'; the "
                             "seeds come from 'seeds' and 'artefacts.<name>.seeds'")
        name = replicate_name(parts.recipe, parts.size, seed, self.first_seed)
        return Run(dataset, architecture, parts.recipe, parts.size, seed, name,
                   resolve_recipe(self.config, name))

    def uniform(self, datasets: Iterable[str], architectures: Iterable[str],
                labels: Iterable[str]) -> list[Attack]:
        """Plain attacks (one run in all stages), per seed, over datasets × architectures × labels."""
        grid = [(d, a, r) for d in datasets for a in architectures for r in labels]
        return [Attack(*(self.run(*cell, seed),) * 3) for seed in self.seeds for cell in grid]

    def stage_swaps(self, dataset: str, architecture: str, baseline: str,
                    others: Sequence[str]) -> list[Attack]:
        """Per seed: the all-baseline attack and, per other run, its three single-stage swaps
        from the baseline and its own plain attack."""
        attacks = []
        for seed in self.seeds:
            base = self.run(dataset, architecture, baseline, seed)
            attacks.append(Attack(base, base, base))
            for label in others:
                other = self.run(dataset, architecture, label, seed)
                attacks += [Attack(*swap) for swap in stage_swaps(base, other)]
                attacks.append(Attack(other, other, other))
        return list(dict.fromkeys(attacks))
