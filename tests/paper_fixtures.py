"""The paper fixtures (tests/fixtures/paper) as the rows of a plan: a small config whose artefacts
are artefacts.json, and its rows pointed at the fixture files instead of results/."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from lsmia.plan.runs import Plan, RowFiles, build_plan

FIXTURES = Path(__file__).parent / "fixtures" / "paper"
SPEC = json.loads((FIXTURES / "artefacts.json").read_text())
RECIPES = ("hard", "ls0.05", "ls0.1", "ls0.2", "nls0.01", "nls0.05", "mid0.01", "bido-0.1-1")


def fixture_plan(artefacts=None, seeds=(42,)) -> Plan:
    config = {"experiment": "fixture", "seeds": list(seeds), "training": {},
              "recipes": {name: {} for name in RECIPES}, "artefacts": artefacts or SPEC}
    return build_plan(config)


def fixture_file(kind: str, attack) -> Path:
    """``<kind>_<arch>_<run>.json``, or ``…_<sample>+<optimise>+<select>.json`` for a swap."""
    names = [run.name for run in attack.stages]
    stem = names[0] if attack.target else "+".join(names)
    return FIXTURES / f"{kind}_{attack.architecture}_{stem}.json"


def on_fixtures(rows) -> list[RowFiles]:
    """The plan's rows with their files replaced by the fixture files of the same attack."""
    return [
        replace(
            row,
            attack_metrics=fixture_file("attack", row.attack),
            target_metrics=row.target_metrics and fixture_file("model", row.attack),
            knowledge=row.knowledge and fixture_file("knowledge", row.attack),
        )
        for row in rows
    ]


def artefact_rows(name: str, plan: Plan | None = None) -> list[RowFiles]:
    return on_fixtures((plan or fixture_plan()).artefact(name).rows())
