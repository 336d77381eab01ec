"""lsmia.paper.collect: the plan's rows joined with their model, attack and knowledge metrics, and
bad inputs refused."""

import json
from dataclasses import replace

import pytest
from paper_fixtures import FIXTURES, artefact_rows, fixture_plan, on_fixtures

from lsmia.paper.collect import MetricsInputError, collect_rows


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_one_row_per_attack_joined_with_model_and_knowledge():
    rows = collect_rows(artefact_rows("main_table"))
    assert list(rows.recipe) == ["hard", "ls0.1", "nls0.05"]  # the plan's order
    hard = rows.iloc[0]
    assert hard.test_accuracy == pytest.approx(0.90)
    assert hard.acc1 == pytest.approx(0.60)
    assert hard.xi_train == pytest.approx(0.40) and hard.xi_test == pytest.approx(0.35)
    assert hard.num_train_images == 900 and not hard.stage_ablation and hard.seed == 42
    assert hard.extractor_face == "synthetic-face-cnn" and bool(hard.synthetic)
    mid = collect_rows(artefact_rows("defence_comparison")).set_index("recipe").loc["mid0.01"]
    assert mid.defence == "mid"
    assert json.loads(mid.defence_params) == {"beta": 0.01, "bottleneck_dim": 512}


def test_stage_ablation_rows_keep_three_recipes_and_no_model_metrics():
    rows = collect_rows(artefact_rows("stage_ablation"))
    ablation = rows[rows.stage_ablation]
    assert list(zip(ablation.recipe_sample, ablation.recipe_optimise, ablation.recipe_select)) == [
        ("nls0.05", "hard", "hard"),
        ("hard", "nls0.05", "hard"),
        ("hard", "hard", "nls0.05"),
    ]
    assert ablation.recipe.isna().all() and ablation.test_accuracy.isna().all()


def test_rows_without_knowledge_have_missing_xi():
    assert collect_rows(artefact_rows("architectures")).xi_train.isna().all()


def test_training_size_rows_show_their_label():
    rows = collect_rows(artefact_rows("training_size"))
    assert list(rows.recipe) == ["hard-n100", "hard", "ls0.1-n100", "ls0.1", "nls0.05-n100",
                                 "nls0.05"]
    assert list(rows.num_train_images) == [100, 900] * 3


def _with_attack(tmp_path, edit, name="broken.json"):
    """The main table's first row with its attack file edited by ``edit``."""
    row = artefact_rows("main_table")[0]
    attack = json.loads(row.attack_metrics.read_text())
    edit(attack)
    return [replace(row, attack_metrics=write(tmp_path / name, attack))]


def test_missing_metric_names_file_and_key(tmp_path):
    rows = _with_attack(tmp_path, lambda a: a["metrics"].pop("delta_face"))
    with pytest.raises(MetricsInputError, match=r"broken\.json: missing key metrics\.'delta_face'"):
        collect_rows(rows)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("acc1", "0.5", "must be a finite number"),
        ("acc1", float("nan"), "must be a finite number"),
        ("acc1", 61.0, r"must be a fraction in \[0, 1\]"),
        ("num_classes", 0, "must be a positive integer"),
    ],
)
def test_malformed_metric_values_are_refused(tmp_path, key, value, message):
    rows = _with_attack(tmp_path, lambda a: a["metrics"].update({key: value}), "bad.json")
    with pytest.raises(MetricsInputError, match=rf"bad\.json: key metrics\.'{key}' {message}"):
        collect_rows(rows)


def test_missing_file_and_invalid_json(tmp_path):
    row = artefact_rows("main_table")[0]
    with pytest.raises(MetricsInputError, match="nowhere.json: metrics file not found"):
        collect_rows([replace(row, attack_metrics=tmp_path / "nowhere.json")])
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(MetricsInputError, match="text.json: not valid JSON"):
        collect_rows([replace(row, attack_metrics=tmp_path / "text.json")])


def test_a_configured_row_without_its_files_names_the_file():
    plan = fixture_plan({"main_table": {"datasets": ["synthfaces"], "architecture": "resnet152",
                                        "recipes": ["hard", "ls0.2"]}})
    with pytest.raises(MetricsInputError, match=r"attack_resnet152_ls0\.2\.json: metrics file "
                                                r"not found"):
        collect_rows(on_fixtures(plan.artefact("main_table").rows()))


def test_defence_must_be_named(tmp_path):
    row = artefact_rows("defence_comparison")[1]
    model = json.loads(row.target_metrics.read_text())
    assert model["defence"]["name"] == "mid"
    model["defence"] = {"beta": 0.01}
    bad = replace(row, target_metrics=write(tmp_path / "model.json", model))
    with pytest.raises(MetricsInputError, match="model.json: key 'defence' must name"):
        collect_rows([bad])


def test_no_rows_is_an_error():
    with pytest.raises(MetricsInputError, match="no attack metrics"):
        collect_rows([])


def _replicate(tmp_path, seed, per_class=None, model_seed=None):
    """The plan's hard-label replicate ``hard-s<seed>`` with model and attack files of that seed."""
    plan = fixture_plan({"main_table": {"datasets": ["synthfaces"], "architecture": "resnet152",
                                        "recipes": ["hard"]}}, seeds=(42, seed))
    row = plan.artefact("main_table").rows()[1]
    assert row.attack.target.name == f"hard-s{seed}" and row.attack.seed == seed
    model = json.loads((FIXTURES / "model_resnet152_hard.json").read_text())
    model.update(seed=seed if model_seed is None else model_seed,
                 per_class={"classes": [0, 1], "test_accuracy": [0.5, 1.0]})
    attack = json.loads((FIXTURES / "attack_resnet152_hard.json").read_text())
    attack.update(seed=seed)
    attack["metrics"]["per_class"] = per_class or {"classes": [0, 1], "acc1": [0.25, 0.75],
                                                   "grad_cosine": [0.1, -0.2]}
    return replace(row, attack_metrics=write(tmp_path / "attack.json", attack),
                   target_metrics=write(tmp_path / "model.json", model), knowledge=None)


def test_seed_replicates_are_rows_of_their_recipe_with_per_class_values(tmp_path):
    rows = collect_rows(artefact_rows("main_table")[:1] + [_replicate(tmp_path, 43)])
    assert list(rows.recipe) == ["hard", "hard"] and list(rows.seed) == [42, 43]
    replicate = rows.iloc[1]
    assert replicate.recipe_optimise == "hard" and not replicate.stage_ablation
    assert replicate.per_class == {"acc1": {0: 0.25, 1: 0.75}, "grad_cosine": {0: 0.1, 1: -0.2},
                                   "test_accuracy": {0: 0.5, 1: 1.0}}
    assert rows.iloc[0].per_class == {}  # files without per-class values


@pytest.mark.parametrize(
    "per_class, message",
    [
        ({"acc1": [0.5]}, r"missing key metrics\.per_class\.'classes'"),
        ({"classes": [0, 1], "acc1": [0.5]}, r"per_class\.'acc1' must be a list of 2 numbers"),
        ({"classes": [0, 1], "acc1": [0.5, 7.0]}, r"'acc1' must be a fraction in \[0, 1\]"),
    ],
)
def test_malformed_per_class_values_are_refused(tmp_path, per_class, message):
    with pytest.raises(MetricsInputError, match=message):
        collect_rows([_replicate(tmp_path, 43, per_class=per_class)])


def test_a_file_of_another_seed_is_refused(tmp_path):
    with pytest.raises(MetricsInputError, match=r"model\.json: recorded seed 7 differs from the "
                                                r"plan's seed 43"):
        collect_rows([_replicate(tmp_path, 43, model_seed=7)])
