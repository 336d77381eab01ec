"""lsmia.paper.claims on constructed per-class numbers: claims that hold, that are reversed, that
are inconclusive, and that cannot be evaluated."""

import zlib

import numpy as np
import pandas as pd
import pytest
from paper_fixtures import SPEC, fixture_plan, on_fixtures

from lsmia.paper.claims import CLAIM_COLUMNS, evaluate_claims, write_claims
from lsmia.paper.collect import collect_rows

CLASSES = range(12)
PER_CLASS_KEYS = ("acc1", "delta_face", "delta_eval", "xi_train", "xi_test", "test_accuracy")
#: Mean cosine of consecutive attack gradients per recipe (not in the JSON fixtures).
GRADIENT = {"hard": 0.6, "ls0.1": 0.7, "nls0.05": 0.3}


def per_class(value, seed, name, noise=0.01):
    """Per-class values around ``value``: a class level shared by every recipe of the seed (it
    cancels in a paired difference) plus small noise of its own (seeded by ``name``)."""
    level = np.random.default_rng(seed).normal(0, 0.05, len(CLASSES))
    own = np.random.default_rng([seed, zlib.crc32(name.encode())]).normal(0, noise, len(CLASSES))
    return {c: float(value + level[c] + own[c]) for c in CLASSES}


@pytest.fixture
def rows():
    """The fixture's rows, replicated for three seeds, with per-class values."""
    base = collect_rows(on_fixtures(fixture_plan().claim_rows()))
    replicates = []
    for seed in (42, 43, 44):
        frame = base.copy()
        frame["seed"] = seed
        frame["per_class"] = [
            {
                **{k: per_class(row[k], seed, f"{row['attack_file']}:{k}")
                   for k in PER_CLASS_KEYS if pd.notna(row[k])},
                **({"grad_cosine": per_class(GRADIENT[row["recipe"]], seed, row["attack_file"])}
                   if row["recipe"] in GRADIENT else {}),
            }
            for row in frame.to_dict("records")
        ]
        replicates.append(frame)
    return pd.concat(replicates, ignore_index=True)


def by_id(claims):
    return {c["id"]: c for c in claims.to_dict("records")}


def set_value(rows, recipe, key, value, architecture="resnet152", noise=0.01):
    mask = (rows.architecture == architecture) & (rows.recipe == recipe)
    assert mask.sum() == 3
    for index in rows.index[mask]:
        seed = rows.at[index, "seed"]
        rows.at[index, "per_class"] = {
            **rows.at[index, "per_class"], key: per_class(value, seed, f"{recipe}:{key}", noise)
        }


def test_all_claims_hold_on_the_fixture(rows):
    claims = by_id(evaluate_claims(rows, SPEC))
    evaluated = {k: c for k, c in claims.items() if c["verdict"] != "not evaluated"}
    assert {c["verdict"] for c in evaluated.values()} == {"holds"}
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
    acc1 = claims["acc1_order:synthfaces:resnet152"]
    assert (acc1["n_seeds"], acc1["n_classes"]) == (3, 12)
    # Acc@1 80 / 60 / 20 %: the pair closer to zero (+LS − hard, 20 points) decides.
    assert acc1["effect"] == pytest.approx(20, abs=1) and 0 < acc1["ci_low"] < acc1["ci_high"]
    assert "Acc@1: ls0.1 − hard = +19." in acc1["comparison"] or \
        "Acc@1: ls0.1 − hard = +20." in acc1["comparison"]
    assert "(holds); Acc@1: hard − nls0.05 = +" in acc1["comparison"]
    assert acc1["claimed"] == "Acc@1: ls0.1 − hard > 0"
    small = claims["small_data"]  # (+LS − hard): 35 points at 100 images, 20 at 900
    assert small["effect"] == pytest.approx(15, abs=1)


def test_a_reversed_pair_reverses_the_ordering(rows):
    set_value(rows, "nls0.05", "acc1", 0.70)  # −LS now leaks more than hard
    set_value(rows, "nls0.05", "test_accuracy", 0.95)
    claims = by_id(evaluate_claims(rows, SPEC))
    acc1 = claims["acc1_order:synthfaces:resnet152"]
    assert acc1["verdict"] == "reversed"
    assert acc1["effect"] == pytest.approx(-10, abs=1) and acc1["ci_high"] < 0
    assert acc1["claimed"] == "Acc@1: hard − nls0.05 > 0"
    assert claims["nls_accuracy_cost:synthfaces:resnet152"]["verdict"] == "reversed"
    assert claims["delta_eval_order:synthfaces:resnet152"]["verdict"] == "holds"


def test_no_effect_is_inconclusive_never_a_tie_verdict(rows):
    set_value(rows, "hard", "acc1", 0.80, noise=0.0)
    set_value(rows, "ls0.1", "acc1", 0.80, noise=0.0)  # identical per class: a tie
    set_value(rows, "nls0.05", "delta_face", 1.0, noise=0.2)  # noisy, no effect
    claims = by_id(evaluate_claims(rows, SPEC))
    acc1 = claims["acc1_order:synthfaces:resnet152"]
    assert acc1["verdict"] == "inconclusive" and acc1["effect"] == pytest.approx(0)
    assert claims["delta_face_order:synthfaces:resnet152"]["verdict"] == "inconclusive"


def test_stage_claim_reversed_when_selection_moves_acc1_most(rows):
    mask = (rows.recipe_sample == "hard") & (rows.recipe_optimise == "hard") & (
        rows.recipe_select == "nls0.05")
    for index in rows.index[mask]:
        rows.at[index, "per_class"] = {"acc1": per_class(0.10, rows.at[index, "seed"], "swap")}
    claim = by_id(evaluate_claims(rows, SPEC))[
        "stage_optimisation:synthfaces:resnet152:hard<-nls0.05"
    ]
    assert claim["verdict"] == "reversed"
    assert "optimisation − selection" in claim["claimed"]


def test_stage_claim_not_evaluated_without_swaps(rows):
    rows = rows[~rows.stage_ablation]
    claim = by_id(evaluate_claims(rows, SPEC))[
        "stage_optimisation:synthfaces:resnet152:hard<-nls0.05"
    ]
    assert claim["verdict"] == "not evaluated" and "nls0.05/hard/hard" in claim["reason"]


def test_defence_claim_reversed_when_a_defence_dominates(rows):
    set_value(rows, "mid0.01", "test_accuracy", 0.87)
    set_value(rows, "mid0.01", "acc1", 0.10)
    assert by_id(evaluate_claims(rows, SPEC))["defence_pareto"]["verdict"] == "reversed"


def test_small_data_claim_reversed_when_the_gap_shrinks(rows):
    set_value(rows, "ls0.1-n100", "acc1", 0.60)
    assert by_id(evaluate_claims(rows, SPEC))["small_data"]["verdict"] == "reversed"


def test_gradient_claim(rows):
    set_value(rows, "nls0.05", "grad_cosine", 0.8)
    claim = by_id(evaluate_claims(rows, SPEC))["gradient_stability"]
    assert claim["verdict"] == "reversed" and claim["effect"] == pytest.approx(0.2, abs=0.02)


def test_without_per_class_values_a_claim_says_so(rows):
    rows["per_class"] = [{k: v for k, v in pc.items() if k != "xi_train"} for pc in rows.per_class]
    claim = by_id(evaluate_claims(rows, SPEC))["xi_train_order:synthfaces:resnet152"]
    assert claim["verdict"] == "not evaluated"
    assert "no per-class ξ_train for ls0.1 (seed 42)" in claim["reason"]


def test_pairs_use_only_shared_seeds(rows):
    rows = rows[~((rows.recipe == "nls0.05") & (rows.seed == 44))]
    acc1 = by_id(evaluate_claims(rows, SPEC))["acc1_order:synthfaces:resnet152"]
    assert acc1["verdict"] == "holds" and acc1["n_seeds"] == 2


def test_absent_sections_are_reported_not_dropped(rows):
    claims = by_id(evaluate_claims(rows, {"main_table": SPEC["main_table"]}))
    for claim_id in ("small_data", "defence_pareto", "gradient_stability", "stage_optimisation"):
        assert claims[claim_id]["verdict"] == "not evaluated"
        assert "no artefact section" in claims[claim_id]["reason"]
    none = by_id(evaluate_claims(rows, {}))
    assert none["acc1_order:main_table"]["verdict"] == "not evaluated"


def test_missing_recipe_row_is_not_evaluated(rows):
    spec = dict(SPEC, main_table=dict(SPEC["main_table"], recipes=["hard", "ls0.2", "nls0.05"]))
    claim = by_id(evaluate_claims(rows, spec))["acc1_order:synthfaces:resnet152"]
    assert claim["verdict"] == "not evaluated" and "synthfaces/resnet152/ls0.2" in claim["reason"]


def test_write_claims(rows, tmp_path):
    set_value(rows, "nls0.05", "acc1", 0.70)
    claims = evaluate_claims(rows, SPEC)
    write_claims(claims, tmp_path / "claims.md", tmp_path / "claims.csv")
    csv = pd.read_csv(tmp_path / "claims.csv")
    assert tuple(csv.columns) == CLAIM_COLUMNS
    for column in ("effect", "ci_low", "ci_high", "verdict", "n_seeds", "n_classes"):
        assert column in csv.columns
    assert len(csv) == len(claims)
    md = (tmp_path / "claims.md").read_text()
    counts = claims.verdict.value_counts()
    evaluated = int((claims.verdict != "not evaluated").sum())
    assert (f"Of {evaluated} evaluated claims, {counts['holds']} hold, {counts['reversed']} are "
            "reversed") in md
    assert "**reversed** (3 seeds × 12 classes)" in md
    assert "not evaluated: no per-class ξ_train" in md
    html = (tmp_path / "claims.html").read_text()  # the report's front page shows it
    assert f"<p>Of {evaluated} evaluated claims, {counts['holds']} hold" in html
    assert html.count("<tr>") == len(claims) + 1 and "reversed (3 seeds × 12 classes)</td>" in html


def test_small_data_claim_needs_only_positive_and_hard_recipes(rows):
    """The demo's training-size curve has no −LS recipe; the claim compares +LS and hard only."""
    spec = {**SPEC, "training_size": {**SPEC["training_size"], "recipes": ["hard", "ls0.1"]}}
    set_value(rows, "ls0.1-n100", "acc1", 0.60)
    assert by_id(evaluate_claims(rows, spec))["small_data"]["verdict"] == "reversed"
