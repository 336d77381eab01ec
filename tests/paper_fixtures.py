"""The paper fixtures (tests/fixtures/paper) as the rows of a plan: a small config whose artefacts
are artefacts.json, and its rows pointed at the fixture files instead of results/."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields, replace
from pathlib import Path

from lsmia.plan.experiment import Plan, build_plan
from lsmia.plan.runs import RowFiles

FIXTURES = Path(__file__).parent / "fixtures" / "paper"
SPEC = json.loads((FIXTURES / "artefacts.json").read_text())
RECIPES = ("hard", "ls0.05", "ls0.1", "ls0.2", "nls0.01", "nls0.05", "mid0.01", "bido-0.1-1")


def fixture_config(artefacts=None, seeds=(42,)) -> dict:
    """What the plan reads of a config, for the fixtures' recipes and ``artefacts``."""
    return {"experiment": "fixture", "seeds": list(seeds), "training": {},
            "recipes": {name: {} for name in RECIPES}, "artefacts": artefacts or SPEC}


def fixture_plan(artefacts=None, seeds=(42,)) -> Plan:
    return build_plan(fixture_config(artefacts, seeds))


def install_fixtures(directory: Path) -> None:
    """Copy the fixture files to where the plan of ``fixture_config()`` expects them under
    ``directory`` (the jobs read the plan's paths)."""
    plan = fixture_plan()
    rows = [*plan.claim_rows(), *(r for a in plan.artefacts.values() for r in a.rows())]
    for planned, fixture in zip(rows, on_fixtures(rows)):
        for field in fields(RowFiles)[1:]:
            source, target = getattr(fixture, field.name), getattr(planned, field.name)
            if source is not None:
                (directory / target).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source, directory / target)


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
