"""lsmia.plan: run names, the tables of the paper and demo plans, and the artefact registry."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from lsmia.config import load_config, resolve_recipe
from lsmia.plan.artefacts import artefact_kind, load_function, registered_artefacts
from lsmia.plan.names import (
    RunName,
    RunNameError,
    looks_derived,
    parse_run_name,
    run_name,
    run_name_pattern,
    stage_swaps,
)
from lsmia.plan.experiment import build_plan

REPO = Path(__file__).resolve().parents[1]
RECIPES = ("hard", "ls0.1", "bido-0.1-1", "nls0.05")


@pytest.fixture(scope="module")
def paper() -> dict:
    return load_config(REPO / "config" / "config.yaml")


@pytest.fixture(scope="module")
def demo() -> dict:
    return load_config(REPO / "config" / "demo.yaml")


@pytest.mark.parametrize("parts", [RunName("hard"), RunName("ls0.1", 2500),
                                   RunName("ls0.1", None, 43), RunName("bido-0.1-1", 100, 7),
                                   RunName("nls0.05", 5000, 44)])
def test_run_names_round_trip(parts):
    name = str(parts)
    assert parse_run_name(name, RECIPES) == parts
    assert re.fullmatch(run_name_pattern(RECIPES), name)
    assert looks_derived(name) == (parts.size is not None or parts.seed is not None)


def test_run_name_spelling():
    assert run_name("ls0.1", 2500, 43) == "ls0.1-n2500-s43"
    assert run_name("hard") == "hard" and run_name("hard", seed=7) == "hard-s7"


@pytest.mark.parametrize("name", ["ls0.3", "ls0.3-n10", "ls0.1-s7-n10", "hard-n", "-s3"])
def test_unknown_run_names_are_refused_with_the_grammar(name):
    with pytest.raises(RunNameError, match=rf"unknown recipe .*'<recipe>-n<N>'"):
        parse_run_name(name, RECIPES)


def test_stage_swaps_change_one_stage_each():
    assert stage_swaps("hard", "ls0.1") == [("ls0.1", "hard", "hard"), ("hard", "ls0.1", "hard"),
                                            ("hard", "hard", "ls0.1")]


def test_paper_plan_tables(paper):
    plan = build_plan(paper)
    counts = {name: len(a.attacks) for name, a in plan.artefacts.items()}
    # one seed: 2 datasets × 3 recipes; baseline + 2 others × (3 swaps + own); 3 recipes × 5 sizes
    assert counts == {"toy_example": 0, "main_table": 6, "stage_ablation": 9, "training_size": 15,
                      "alpha_sweep": 7, "embeddings": 3, "gradient_similarity": 3,
                      "defence_comparison": 11, "architectures": 6, "sample_grid": 3}
    # facescrub/resnet152: 15 recipes of alpha_sweep ∪ defences + 12 limited sets; celeba 3;
    # two more architectures × 3; the six stage swaps are attacks but train nothing
    assert len(plan.runs) == 36 and len(plan.attacks) == 42 and len(plan.knowledge) == 6
    assert all(run.resolved == resolve_recipe(paper, run.name) for run in plan.runs)
    sizes = {(r.recipe, r.size) for r in plan.artefact("training_size").targets}
    assert ("ls0.1", 2500) in sizes and ("hard", None) in sizes
    assert {r.name for r in plan.runs} >= {"ls0.1-n2500", "nls0.05-n20000", "mid0.003"}


def test_demo_plan_seed_replicates(demo):
    plan = build_plan(demo)
    main = plan.artefact("main_table")
    assert [a.target.name for a in main.attacks] == [
        "hard", "ls0.1", "nls0.05", "hard-s43", "ls0.1-s43", "nls0.05-s43", "hard-s44",
        "ls0.1-s44", "nls0.05-s44"]
    assert {a.seed for a in main.attacks} == {42, 43, 44}
    assert all(a.target.label == a.target.recipe for a in main.attacks)
    # artefacts with `seeds: 1` and the single-model pictures show the first seed only
    assert {a.seed for a in plan.artefact("stage_ablation").attacks} == {42}
    assert {a.seed for a in plan.artefact("embeddings").attacks} == {42}
    assert plan.replicate_seed("ls0.1-n192-s43") == 43 and plan.replicate_seed("ls0.1") == 42
    assert len(plan.runs) == 19 and len(plan.attacks) == 25 and len(plan.knowledge) == 9


def test_stage_ablation_rows(demo):
    rows = build_plan(demo).artefact("stage_ablation").rows()
    stages = [tuple(run.name for run in row.attack.stages) for row in rows]
    assert stages[:5] == [("hard",) * 3, ("ls0.1", "hard", "hard"), ("hard", "ls0.1", "hard"),
                          ("hard", "hard", "ls0.1"), ("ls0.1",) * 3]
    assert len(stages) == len(set(stages)) == 9
    swap = rows[1]
    assert swap.attack.target is None and swap.target_metrics is None and swap.knowledge is None
    assert swap.attack_metrics == "results/demo/attacks/synth/tiny_resnet/ls0.1/hard/hard/metrics.json"


def test_rows_name_their_files(demo):
    plan = build_plan(demo)
    row = plan.artefact("main_table").rows()[3]
    assert row.attack_metrics == ("results/demo/attacks/synth/tiny_resnet/hard-s43/hard-s43/"
                                  "hard-s43/metrics.json")
    assert row.target_metrics == "results/demo/models/synth/tiny_resnet/hard-s43/metrics.json"
    assert row.knowledge.endswith("hard-s43/hard-s43/hard-s43/knowledge.json")
    claims = plan.claim_rows()
    assert len(claims) == len({row.attack for row in claims})
    assert {row.attack for row in claims if row.knowledge} == set(plan.knowledge)


@pytest.mark.parametrize("config_name", ["config.yaml", "demo.yaml"])
def test_registry_covers_every_configured_artefact(config_name):
    config = load_config(REPO / "config" / config_name)
    plan = build_plan(config)
    assert list(plan.artefacts) == list(config["artefacts"])
    assert set(config["artefacts"]) <= set(registered_artefacts())
    for name in registered_artefacts():
        kind = artefact_kind(name)
        assert all(callable(load_function(ref)) for ref in (kind.builder, kind.figure) if ref)
    for artefact in plan.artefacts.values():
        assert artefact.outputs and all(f.startswith(f"results/{config['experiment']}/paper/")
                                        for f in artefact.outputs.values())


def test_unknown_artefacts_are_named(demo):
    config = copy.deepcopy(demo)
    config["artefacts"]["pie_chart"] = {}
    with pytest.raises(KeyError, match="unknown artefact 'pie_chart' under 'artefacts'; "
                                       "registered: .*'main_table'"):
        build_plan(config)
    with pytest.raises(KeyError, match="artefact 'pie_chart' is not in this config"):
        build_plan(demo).artefact("pie_chart")
    assert artefact_kind("training_size").figure == "lsmia.paper.figures:training_size_figure"


def test_artefact_recipes_carry_no_seed(demo):
    config = copy.deepcopy(demo)
    config["artefacts"]["alpha_sweep"]["recipes"] = ["hard-s43"]
    with pytest.raises(ValueError, match="run 'hard-s43' in 'artefacts'"):
        build_plan(config)


def test_alpha_trace_in_architecture_doc_names_existing_files():
    """docs/architecture.md's α trace: numbered, existing files, its stated counts true, and every
    file marked α reads the α (``alpha``) or names the row (``main_table``, ``row_files``)."""
    text = (REPO / "docs" / "architecture.md").read_text()
    section = text.split("## Following one α to its row in the main table", 1)[1]
    steps = re.findall(r"^(\d+)\. (\*\*α\*\* )?`([^`]+)`", section, flags=re.M)
    assert [int(number) for number, _, _ in steps] == list(range(1, len(steps) + 1))
    marked = [path for _, mark, path in steps if mark]
    for _, _, path in steps:
        assert (REPO / path).is_file(), path
    for path in marked:
        source = (REPO / path).read_text()
        assert any(word in source for word in ("alpha", "main_table", "row_files")), path
    assert f"{len(steps)} files, {len(marked)} of them with α logic" in section
