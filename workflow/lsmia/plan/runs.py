"""The experiment plan: what is trained, attacked and measured, and what each artefact shows.

``build_plan(config)`` takes the validated config (``lsmia.config.validate_config``) and returns a
``Plan`` of frozen records. Rules take their targets and input files from it, the paper jobs their
rows; nothing else builds or reads run names or stage-swap combinations.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from lsmia.config import resolve_recipe
from lsmia.plan.layout import Layout
from lsmia.plan.names import STAGES, parse_run_name, replicate_name, run_name, stage_swaps


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


def load_function(reference: str) -> Callable:
    """The function named ``"package.module:function"`` (imported only when needed)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True, eq=False)
class Artefact:
    """One configured artefact: its registry entry, config entry, rows and files."""

    kind: object  # lsmia.plan.artefacts.ArtefactKind
    spec: Mapping
    attacks: tuple[Attack, ...]
    layout: Layout

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def outputs(self) -> dict[str, str]:
        """Output key → file (the rule's outputs)."""
        return {key: f"{self.layout.paper}/{file}" for key, file in self.kind.outputs.items()}

    @property
    def targets(self) -> tuple[Run, ...]:
        """The target runs of its attacks (one per attack all of whose stages use it)."""
        return tuple(dict.fromkeys(a.target for a in self.attacks if a.target))

    def rows(self) -> tuple[RowFiles, ...]:
        """Per attack: its metrics, its target's metrics and (where measured) its knowledge file."""
        return tuple(row_files(a, self.layout, self.kind.knowledge) for a in self.attacks)


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


@dataclass(frozen=True, eq=False)
class Plan:
    """The experiment: runs (trained), attacks, knowledge (attacks measured with ξ), artefacts."""

    seeds: tuple[int, ...]
    recipes: tuple[str, ...]
    layout: Layout
    runs: tuple[Run, ...]
    attacks: tuple[Attack, ...]
    knowledge: tuple[Attack, ...]
    artefacts: Mapping[str, Artefact]

    def artefact(self, name: str) -> Artefact:
        if name not in self.artefacts:
            raise KeyError(f"artefact {name!r} is not in this config's 'artefacts' (configured: "
                           f"{sorted(self.artefacts)})")
        return self.artefacts[name]

    def replicate_seed(self, run: str) -> int:
        """The seed of run name ``run``: its ``-s<seed>``, else the first of ``seeds``."""
        seed = parse_run_name(run, self.recipes).seed
        return self.seeds[0] if seed is None else seed

    def claim_rows(self) -> tuple[RowFiles, ...]:
        """The rows of every artefact the claims read, once each (ξ where an artefact measures it)."""
        rows: dict[Attack, RowFiles] = {}
        for artefact in self.artefacts.values():
            if artefact.kind.claims:
                for row in artefact.rows():
                    if row.attack not in rows or row.knowledge:
                        rows[row.attack] = row
        return tuple(rows.values())


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


def build_plan(config: Mapping) -> Plan:
    """The plan of a validated config (reads experiment, seeds, recipes, training, artefacts)."""
    from lsmia.plan.artefacts import artefact_kind

    layout = Layout(f"results/{config['experiment']}")
    artefacts = {}
    for name, spec in config["artefacts"].items():
        kind = artefact_kind(name)
        count = 1 if kind.single_seed else spec.get("seeds", len(config["seeds"]))
        maker = RunMaker(config, config["seeds"][:count])
        artefacts[name] = Artefact(kind, spec, tuple(kind.select(spec, maker)), layout)
    attacks = tuple(dict.fromkeys(a for art in artefacts.values() for a in art.attacks))
    knowledge = tuple(dict.fromkeys(a for art in artefacts.values() if art.kind.knowledge
                                    for a in art.attacks))
    runs = tuple(dict.fromkeys(run for attack in attacks for run in attack.stages))
    return Plan(tuple(config["seeds"]), tuple(config["recipes"]), layout, runs, attacks,
                knowledge, artefacts)


__all__ = ["STAGES", "Artefact", "Attack", "Plan", "RowFiles", "Run", "RunMaker", "build_plan",
           "load_function", "row_files"]
