"""The experiment plan: what is trained, attacked and measured, and what each artefact shows.

``build_plan(config)`` takes the validated config (``lsmia.config.validate_config``) and returns a
``Plan`` of frozen records. Rules take their targets and input files from it, the paper jobs their
rows; nothing else builds or reads run names or stage-swap combinations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from lsmia.plan.artefacts import ArtefactKind, artefact_kind
from lsmia.plan.layout import Layout
from lsmia.plan.names import parse_run_name
from lsmia.plan.runs import Attack, RowFiles, Run, RunMaker, row_files


@dataclass(frozen=True, eq=False)
class Artefact:
    """One configured artefact: its registry entry, config entry, rows and files."""

    kind: ArtefactKind
    spec: Mapping
    attacks: tuple[Attack, ...]
    layout: Layout

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def outputs(self) -> dict[str, str]:
        """Output key → file (the rule's outputs)."""
        return self.layout.paper_files(self.kind.outputs)

    @property
    def targets(self) -> tuple[Run, ...]:
        """The target runs of its attacks (one per attack all of whose stages use it)."""
        return tuple(dict.fromkeys(a.target for a in self.attacks if a.target))

    def rows(self) -> tuple[RowFiles, ...]:
        """Per attack: its metrics, its target's metrics and (where measured) its knowledge file."""
        return tuple(row_files(a, self.layout, self.kind.knowledge) for a in self.attacks)


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


def build_plan(config: Mapping) -> Plan:
    """The plan of a validated config (reads experiment, seeds, recipes, training, artefacts)."""
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

