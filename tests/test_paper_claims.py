"""lsmia.paper.claims on constructed numbers: claims that hold, that fail, and that cannot be
evaluated."""

import json
from pathlib import Path

import pandas as pd
import pytest

from lsmia.paper.claims import evaluate_claims, write_claims
from lsmia.paper.collect import collect_rows
from lsmia.paper.figures import read_gradient_log

FIXTURES = Path(__file__).parent / "fixtures" / "paper"
SPEC = json.loads((FIXTURES / "artefacts.json").read_text())
LOGS = {r: read_gradient_log(FIXTURES / f"gradients_{r}.csv") for r in ("hard", "ls0.1", "nls0.05")}


@pytest.fixture
def rows():
    return collect_rows(
        *(sorted(FIXTURES.glob(f"{k}_*.json")) for k in ("model", "attack", "knowledge"))
    )


def by_id(claims):
    return {c["id"]: c for c in claims.to_dict("records")}


def set_value(rows, recipe, key, value, architecture="resnet152"):
    mask = (rows.architecture == architecture) & (rows.recipe == recipe)
    assert mask.sum() == 1
    rows.loc[mask, key] = value


def test_all_claims_hold_on_the_fixture(rows):
    claims = by_id(evaluate_claims(rows, SPEC, LOGS))
    evaluated = {k: c for k, c in claims.items() if c["evaluated"]}
    assert all(c["holds"] for c in evaluated.values())
    assert set(evaluated) >= {
        "acc1_order:synthfaces:resnet152",
        "delta_face_order:synthfaces:resnet152",
        "delta_eval_order:synthfaces:resnet152",
        "xi_train_order:synthfaces:resnet152",
        "xi_test_order:synthfaces:resnet152",
        "nls_accuracy_cost:synthfaces:resnet152",
        "acc1_order:synthfaces:densenet121",
        "small_data",
        "stage_optimisation:synthfaces:resnet152:hard<-nls0.05",
        "defence_pareto",
        "gradient_stability",
    }
    acc1 = claims["acc1_order:synthfaces:resnet152"]["inequality"]
    assert acc1 == "Acc@1 (%) ↑: ls0.1 80.00 > hard 60.00 > nls0.05 20.00"
    assert "35.00 at 100 images > 20.00 at 900 images" in claims["small_data"]["inequality"]


def test_xi_absent_for_an_architecture_is_not_evaluated_with_reason(rows):
    claims = by_id(evaluate_claims(rows, SPEC, LOGS))
    xi = claims["xi_train_order:synthfaces:densenet121"]
    assert not xi["evaluated"] and xi["holds"] is None
    assert "ξ_train (%) was not computed for ls0.1" in xi["reason"]


def test_orderings_that_do_not_hold(rows):
    set_value(rows, "nls0.05", "acc1", 0.65)  # −LS now leaks more than hard
    set_value(rows, "ls0.1", "delta_face", 1.05)  # +LS no longer closest
    set_value(rows, "nls0.05", "test_accuracy", 0.95)
    claims = by_id(evaluate_claims(rows, SPEC, LOGS))
    assert claims["acc1_order:synthfaces:resnet152"]["holds"] is False
    assert "nls0.05 65.00" in claims["acc1_order:synthfaces:resnet152"]["inequality"]
    assert claims["delta_face_order:synthfaces:resnet152"]["holds"] is False
    assert claims["nls_accuracy_cost:synthfaces:resnet152"]["holds"] is False
    assert claims["delta_eval_order:synthfaces:resnet152"]["holds"] is True


def test_ties_do_not_hold(rows):
    set_value(rows, "hard", "acc1", 0.80)
    assert (
        by_id(evaluate_claims(rows, SPEC, LOGS))["acc1_order:synthfaces:resnet152"]["holds"]
        is False
    )


def test_stage_claim_fails_when_selection_moves_acc1_most(rows):
    mask = (
        (rows.recipe_sample == "hard")
        & (rows.recipe_optimise == "hard")
        & (rows.recipe_select == "nls0.05")
    )
    rows.loc[mask, "acc1"] = 0.10
    claim = by_id(evaluate_claims(rows, SPEC, LOGS))[
        "stage_optimisation:synthfaces:resnet152:hard<-nls0.05"
    ]
    assert claim["holds"] is False and "selection 50.00" in claim["inequality"]


def test_stage_claim_not_evaluated_without_swaps(rows):
    rows = rows[~rows.stage_ablation]
    claim = by_id(evaluate_claims(rows, SPEC, LOGS))[
        "stage_optimisation:synthfaces:resnet152:hard<-nls0.05"
    ]
    assert not claim["evaluated"] and "nls0.05/hard/hard" in claim["reason"]


def test_defence_claim_fails_when_a_defence_dominates(rows):
    set_value(rows, "mid0.01", "test_accuracy", 0.87)
    set_value(rows, "mid0.01", "acc1", 0.10)
    claim = by_id(evaluate_claims(rows, SPEC, LOGS))["defence_pareto"]
    assert (
        claim["holds"] is False and "non-dominated negative-LS models: none" in claim["inequality"]
    )


def test_small_data_claim_fails_when_gap_shrinks(rows):
    set_value(rows, "ls0.1-n100", "acc1", 0.60)
    assert by_id(evaluate_claims(rows, SPEC, LOGS))["small_data"]["holds"] is False


def test_gradient_claim(rows):
    flipped = {"hard": LOGS["nls0.05"], "nls0.05": LOGS["hard"]}
    assert by_id(evaluate_claims(rows, SPEC, flipped))["gradient_stability"]["holds"] is False
    missing = by_id(evaluate_claims(rows, SPEC))["gradient_stability"]
    assert not missing["evaluated"] and missing["reason"] == "no gradient logs were given"


def test_absent_sections_are_reported_not_dropped(rows):
    claims = by_id(evaluate_claims(rows, {"main_table": SPEC["main_table"]}))
    for claim_id in ("small_data", "defence_pareto", "gradient_stability", "stage_optimisation"):
        assert not claims[claim_id]["evaluated"]
        assert "no artefact section" in claims[claim_id]["reason"]
    none = by_id(evaluate_claims(rows, {}))
    assert not none["acc1_order:main_table"]["evaluated"]


def test_missing_recipe_row_is_not_evaluated(rows):
    spec = dict(SPEC, main_table=dict(SPEC["main_table"], recipes=["hard", "ls0.2", "nls0.05"]))
    claim = by_id(evaluate_claims(rows, spec, LOGS))["acc1_order:synthfaces:resnet152"]
    assert not claim["evaluated"] and "synthfaces/resnet152/ls0.2" in claim["reason"]


def test_write_claims(rows, tmp_path):
    set_value(rows, "nls0.05", "acc1", 0.65)
    claims = evaluate_claims(rows, SPEC, LOGS)
    write_claims(claims, tmp_path / "claims.md", tmp_path / "claims.csv")
    csv = pd.read_csv(tmp_path / "claims.csv")
    assert list(csv.columns) == ["id", "statement", "inequality", "holds", "evaluated", "reason"]
    assert len(csv) == len(claims)
    md = (tmp_path / "claims.md").read_text()
    evaluated = int(claims.evaluated.sum())
    held = int(claims[claims.evaluated].holds.astype(bool).sum())
    assert f"{held} of {evaluated} evaluated claims hold" in md
    assert "**does not hold**" in md and "not evaluated: ξ_train (%) was not computed" in md
    html = (tmp_path / "claims.html").read_text()  # the report's front page shows it
    assert f"<p>{held} of {evaluated} evaluated claims hold" in html
    assert html.count("<tr>") == len(claims) + 1 and "<td>does not hold</td>" in html
