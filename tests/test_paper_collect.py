"""lsmia.paper.collect: joining model, attack and knowledge metrics, and refusing bad inputs."""

import json
import shutil
from pathlib import Path

import pytest

from lsmia.paper.collect import MetricsInputError, collect_rows

FIXTURES = Path(__file__).parent / "fixtures" / "paper"


def fixture_files(kind):
    return sorted(FIXTURES.glob(f"{kind}_*.json"))


def collect_fixtures(**replace):
    files = {kind: fixture_files(kind) for kind in ("model", "attack", "knowledge")}
    files.update(replace)
    return collect_rows(files["model"], files["attack"], files["knowledge"])


def test_one_row_per_attack_joined_with_model_and_knowledge():
    rows = collect_fixtures()
    assert len(rows) == len(fixture_files("attack"))
    hard = rows[(rows.architecture == "resnet152") & (rows.recipe == "hard")].iloc[0]
    assert hard.test_accuracy == pytest.approx(0.90)
    assert hard.acc1 == pytest.approx(0.60)
    assert hard.xi_train == pytest.approx(0.40) and hard.xi_test == pytest.approx(0.35)
    assert hard.num_train_images == 900 and not hard.stage_ablation
    assert hard.extractor_face == "synthetic-face-cnn" and bool(hard.synthetic)
    mid = rows[rows.recipe == "mid0.01"].iloc[0]
    assert mid.defence == "mid"
    assert json.loads(mid.defence_params) == {"beta": 0.01, "bottleneck_dim": 512}


def test_stage_ablation_rows_keep_three_recipes_and_no_model_metrics():
    rows = collect_fixtures()
    ablation = rows[rows.stage_ablation]
    assert len(ablation) == 3
    assert set(zip(ablation.recipe_sample, ablation.recipe_optimise, ablation.recipe_select)) == {
        ("nls0.05", "hard", "hard"),
        ("hard", "nls0.05", "hard"),
        ("hard", "hard", "nls0.05"),
    }
    assert ablation.recipe.isna().all() and ablation.test_accuracy.isna().all()


def test_attack_without_knowledge_has_missing_xi():
    rows = collect_fixtures()
    dense = rows[rows.architecture == "densenet121"]
    assert dense.xi_train.isna().all()


def write(path, obj):
    path.write_text(json.dumps(obj))
    return path


def test_missing_target_model_names_the_attack_file():
    models = [p for p in fixture_files("model") if p.name != "model_resnet152_ls0.1.json"]
    with pytest.raises(MetricsInputError, match=r"attack_resnet152_ls0\.1\.json.*recipe='ls0\.1'"):
        collect_fixtures(model=models)


def test_missing_metric_names_file_and_key(tmp_path):
    attack = json.loads((FIXTURES / "attack_resnet152_hard.json").read_text())
    del attack["metrics"]["delta_face"]
    bad = write(tmp_path / "broken.json", attack)
    with pytest.raises(MetricsInputError, match=r"broken\.json: missing key metrics\.'delta_face'"):
        collect_rows(fixture_files("model"), [bad])


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
    attack = json.loads((FIXTURES / "attack_resnet152_hard.json").read_text())
    attack["metrics"][key] = value
    bad = write(tmp_path / "bad.json", attack)
    with pytest.raises(MetricsInputError, match=rf"bad\.json: key metrics\.'{key}' {message}"):
        collect_rows(fixture_files("model"), [bad])


def test_missing_file_and_invalid_json(tmp_path):
    with pytest.raises(MetricsInputError, match="nowhere.json: metrics file not found"):
        collect_rows(fixture_files("model"), [tmp_path / "nowhere.json"])
    (tmp_path / "text.json").write_text("{not json")
    with pytest.raises(MetricsInputError, match="text.json: not valid JSON"):
        collect_rows(fixture_files("model"), [tmp_path / "text.json"])


def test_duplicate_attack_is_refused(tmp_path):
    copy = shutil.copy(FIXTURES / "attack_resnet152_hard.json", tmp_path / "again.json")
    with pytest.raises(MetricsInputError, match="again.json.*duplicate"):
        collect_fixtures(attack=fixture_files("attack") + [Path(copy)])


def test_knowledge_without_attack_is_refused(tmp_path):
    knowledge = json.loads((FIXTURES / "knowledge_resnet152_hard.json").read_text())
    knowledge["recipes"] = {"sample": "ls0.2", "optimise": "ls0.2", "select": "ls0.2"}
    orphan = write(tmp_path / "orphan.json", knowledge)
    with pytest.raises(
        MetricsInputError, match="orphan.json: knowledge metrics .*ls0.2.* match no attack"
    ):
        collect_fixtures(knowledge=[orphan])


def test_knowledge_may_name_a_single_recipe(tmp_path):
    single = write(
        tmp_path / "k.json",
        {
            "dataset": "synthfaces",
            "architecture": "densenet121",
            "recipe": "hard",
            "xi_train": 0.3,
            "xi_test": 0.2,
        },
    )
    rows = collect_fixtures(knowledge=[single])
    dense_hard = rows[(rows.architecture == "densenet121") & (rows.recipe == "hard")].iloc[0]
    assert dense_hard.xi_test == pytest.approx(0.2)


def test_defence_must_be_named(tmp_path):
    model = json.loads((FIXTURES / "model_resnet152_mid0.01.json").read_text())
    model["defence"] = {"beta": 0.01}
    bad = write(tmp_path / "model.json", model)
    with pytest.raises(MetricsInputError, match="model.json: key 'defence' must name"):
        collect_rows([bad], fixture_files("attack")[:1])


def test_no_attacks_is_an_error():
    with pytest.raises(MetricsInputError, match="no attack metrics"):
        collect_rows(fixture_files("model"), [])


def _replicate(tmp_path, seed, per_class=None, model_seed=None):
    """The hard-label resnet152 run as replicate ``hard-s<seed>`` (model and attack file)."""
    name = f"hard-s{seed}"
    model = json.loads((FIXTURES / "model_resnet152_hard.json").read_text())
    model.update(recipe=name, seed=seed if model_seed is None else model_seed,
                 per_class={"classes": [0, 1], "test_accuracy": [0.5, 1.0]})
    attack = json.loads((FIXTURES / "attack_resnet152_hard.json").read_text())
    attack.update(recipes={stage: name for stage in ("sample", "optimise", "select")}, seed=seed)
    attack["metrics"]["per_class"] = per_class or {"classes": [0, 1], "acc1": [0.25, 0.75],
                                                   "grad_cosine": [0.1, -0.2]}
    return write(tmp_path / f"model_{name}.json", model), write(tmp_path / f"attack_{name}.json",
                                                                 attack)


def test_seed_replicates_are_rows_of_their_recipe_with_per_class_values(tmp_path):
    model, attack = _replicate(tmp_path, 43)
    rows = collect_fixtures(model=fixture_files("model") + [model],
                            attack=fixture_files("attack") + [attack])
    hard = rows[(rows.architecture == "resnet152") & (rows.recipe == "hard")]
    assert sorted(hard.seed) == [42, 43]
    replicate = hard[hard.seed == 43].iloc[0]
    assert replicate.recipe_optimise == "hard" and not replicate.stage_ablation
    assert replicate.per_class == {"acc1": {0: 0.25, 1: 0.75}, "grad_cosine": {0: 0.1, 1: -0.2},
                                   "test_accuracy": {0: 0.5, 1: 1.0}}
    assert hard[hard.seed == 42].iloc[0].per_class == {}  # files without per-class values


@pytest.mark.parametrize(
    "per_class, message",
    [
        ({"acc1": [0.5]}, r"missing key metrics\.per_class\.'classes'"),
        ({"classes": [0, 1], "acc1": [0.5]}, r"per_class\.'acc1' must be a list of 2 numbers"),
        ({"classes": [0, 1], "acc1": [0.5, 7.0]}, r"'acc1' must be a fraction in \[0, 1\]"),
    ],
)
def test_malformed_per_class_values_are_refused(tmp_path, per_class, message):
    model, attack = _replicate(tmp_path, 43, per_class=per_class)
    with pytest.raises(MetricsInputError, match=message):
        collect_rows([model], [attack])


def test_attack_seed_must_match_its_target(tmp_path):
    model, attack = _replicate(tmp_path, 43, model_seed=7)
    with pytest.raises(MetricsInputError, match="attack seed 43 differs from its target's seed 7"):
        collect_rows([model], [attack])
