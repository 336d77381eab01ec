"""The config schema and its cross-references: bad configs fail with messages naming the key."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from lsmia.config import (
    ConfigError,
    attack_settings,
    entry_with_defaults,
    load_config,
    recipe_with_runtime_settings,
    recipe_without_runtime_settings,
    resolve_recipe,
    typed_command_line_config,
    validate_config,
    with_runtime_settings,
    without_runtime_settings,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def demo() -> dict:
    return yaml.safe_load((REPO / "config/demo.yaml").read_text())


@pytest.fixture(scope="module")
def paper() -> dict:
    return yaml.safe_load((REPO / "config/config.yaml").read_text())


def test_shipped_configs_are_valid():
    assert load_config(REPO / "config/demo.yaml")["experiment"] == "demo"
    assert load_config(REPO / "config/config.yaml")["experiment"] == "paper"


def _error(config: dict) -> str:
    with pytest.raises(ConfigError) as info:
        validate_config(config)
    return str(info.value)


def _edit(config: dict, path: str, value) -> dict:
    config = copy.deepcopy(config)
    *parents, last = path.split("/")
    node = config
    for key in parents:
        node = node[key]
    node[last] = value
    return config


@pytest.mark.parametrize(
    "path, value, expected",
    [
        ("recipes/ls0.1/alpha", 1.5, "'recipes.ls0.1.alpha': 1.5 is greater than the maximum of 1"),
        ("training/epochs", "ten", "'training.epochs': 'ten' is not of type 'integer'"),
        ("recipes/hard/alpah", 0.1, "'recipes.hard': Additional properties are not allowed ('alpah'"),
        ("training/alpha_schedule", "cosine", "'training.alpha_schedule': 'cosine' is not one of ['paper', 'none', 'linear']"),
        ("datasets/synth/source", "mnist", "'datasets.synth.source': 'mnist' is not one of ['synthetic', 'facescrub', 'celeba']"),
        ("architectures/tiny_resnet/model", "resnet_9000", "unknown model 'resnet_9000'"),
        ("architectures/tiny_resnet/model", "tv:vgg16", "unknown model 'tv:vgg16'"),
        ("artefacts/main_table/recipes", ["hard", "ls9"], "unknown recipe 'ls9'"),
        ("artefacts/main_table/architecture", "vgg", "unknown architecture 'vgg'"),
        ("datasets/synth/evaluation/architecture", "nope", "'datasets.synth.evaluation.architecture': unknown architecture 'nope'"),
        ("attack/generator", {"kind": "biggan"}, "'attack.generator.kind': unknown kind 'biggan'; expected one of"),
        ("recipes/hard/defence", {"name": "dp", "beta": 1}, "'recipes.hard.defence.name': unknown name 'dp'; expected one of ['mid', 'bido'] (or null)"),
        ("recipes/hard/defence", {"name": "mid"}, "'recipes.hard.defence': 'beta' is a required property"),
        ("experiment", "..", "'experiment': '..' is not allowed here"),
        ("experiment", ".", "'experiment': '.' is not allowed here"),
        ("attack/classes", 17, "'attack.classes' (dataset synth): needs 17 identities, the dataset has 16"),
        ("artefacts/embeddings/classes", [0, 1, 16], "'artefacts.embeddings.classes' (dataset synth): needs 17 identities"),
        ("artefacts/sample_grid/classes", 20, "'artefacts.sample_grid.classes' (dataset synth): needs 20 identities"),
        ("attack/classes", 2, "'artefacts.sample_grid.classes': 4 exceeds 'attack.classes' = 2"),
        ("attack/select/final_per_class", 3, "'attack.select.final_per_class' (dataset synth): 3 images per class leave no k=3"),
        ("attack/optimise/compile_target", "yes", "'attack.optimise.compile_target': 'yes' is not of type 'boolean'"),
    ],
)
def test_bad_config_names_key_and_allowed_values(demo, path, value, expected):
    assert expected in _error(_edit(demo, path, value))


def test_unknown_top_level_key_lists_allowed_keys(demo):
    message = _error({**demo, "epochs": 3})
    assert "'<top level>': Additional properties are not allowed ('epochs'" in message
    assert "allowed keys: ['architectures', 'artefacts'" in message


def test_source_specific_keys_are_required(paper):
    config = copy.deepcopy(paper)
    del config["datasets"]["facescrub"]["raw_dir"]
    assert "'datasets.facescrub': a facescrub dataset needs 'raw_dir'" in _error(config)


def test_imagenet_pretraining_needs_weights(paper):
    config = copy.deepcopy(paper)
    del config["weights"]["tv:resnet152"]
    assert "imagenet weights for 'tv:resnet152'" in _error(config)


def test_every_problem_is_reported_at_once(demo):
    config = _edit(_edit(demo, "recipes/ls0.1/alpha", 2), "training/batch_size", 0)
    message = _error(config)
    assert "2 problem(s)" in message and "alpha" in message and "batch_size" in message


def test_recipe_resolution_merges_defaults(paper):
    config = validate_config(paper)
    recipe = resolve_recipe(config, "nls0.05")
    assert recipe["alpha"] == -0.05 and recipe["alpha_schedule"] == "paper"
    assert recipe["optimizer"]["lr"] == 0.001 and recipe["epochs"] == 100
    evaluation = resolve_recipe(config, "eval-facescrub")
    assert evaluation["lr_schedule"]["milestones"] == [80]
    assert evaluation["augment"]["resize"] == 299 and evaluation["augment"]["flip"] is True


def _without(config: dict, *paths: str) -> dict:
    config = copy.deepcopy(config)
    for path in paths:
        *parents, last = path.split("/")
        node = config
        for key in parents:
            node = node[key]
        del node[last]
    return config


OPTIONAL_KEYS = {  # key: the schema's default
    "device": "auto", "seed": 42, "metrics/prdc_k": 3, "metrics/batch_size": 64,
    "training/precision": "fp32", "training/aux_loss_weight": 1.0, "attack/classes": "all",
    "attack/seed": 42, "attack/precision": "fp32", "attack/sample/clamp": True,
    "attack/sample/latent_draw": "numpy", "attack/optimise/crop_per": "batch",
    "attack/optimise/compile_target": False,
    "artefacts/sample_grid/classes": 4, "artefacts/sample_grid/images": 3,
}


def _lookup(config: dict, path: str):
    for key in path.split("/"):
        config = config[key]
    return config


def test_schema_defaults_fill_a_config_that_omits_them(demo, paper):
    config = validate_config(_without(demo, *OPTIONAL_KEYS))
    assert {path: _lookup(config, path) for path in OPTIONAL_KEYS} == OPTIONAL_KEYS
    assert config["seeds"] == [42, 43, 44]
    paper_config = validate_config(_without(paper, "metrics/face/input_scaling"))
    assert paper_config["metrics"]["face"]["input_scaling"] == "ppa"


def test_public_model_extractors_get_no_input_scaling(demo):
    config = validate_config(demo)
    assert "input_scaling" not in config["metrics"]["face"]
    assert "input_scaling" not in config["metrics"]["fid"]


def test_recipes_and_dataset_overrides_get_no_defaults(demo):
    """A default filled into a recipe or a per-dataset attack override would override the value
    of ``training`` or ``attack`` it is merged over."""
    config = _edit(_edit(demo, "training/precision", "bf16"), "training/aux_loss_weight", 0.5)
    config = _edit(_edit(config, "attack/sample/latent_draw", "torch"), "attack/precision", "bf16")
    config = _edit(config, "datasets/synth/attack", {"sample": {"search_space_size": 40}})
    validated = validate_config(_without(config, "recipes/ls0.1/alpha"))
    assert validated["recipes"]["ls0.1"] == {} and validated["recipes"]["hard"] == {"alpha": 0.0}
    recipe = resolve_recipe(validated, "hard")
    assert recipe["precision"] == "bf16" and recipe["aux_loss_weight"] == 0.5
    assert validated["datasets"]["synth"]["attack"] == {"sample": {"search_space_size": 40}}
    settings = attack_settings(validated, "synth")
    assert settings["sample"]["latent_draw"] == "torch" and settings["precision"] == "bf16"
    assert settings["sample"]["search_space_size"] == 40


def test_dataset_and_architecture_entries_stay_as_written(paper, demo):
    """They are rule params: their defaults are filled where they are read."""
    config = validate_config(paper)
    assert config["datasets"] == paper["datasets"]
    assert config["architectures"] == paper["architectures"]
    celeba = entry_with_defaults("dataset", _without(paper["datasets"]["celeba"], "identities", "crop"))
    assert (celeba["identities"], celeba["crop"], celeba["face_factor"]) == (1000, "landmarks", 0.65)
    assert (celeba["test_fraction"], celeba["split_seed"], celeba["on_corrupt"]) == (0.1, 42, "fail")
    facescrub = entry_with_defaults("dataset", paper["datasets"]["facescrub"])
    assert "crop" not in facescrub and "identities" not in facescrub
    assert entry_with_defaults("dataset", demo["datasets"]["synth"])["nuisance_scale"] == 1.0
    synth = _edit(demo["datasets"]["synth"], "nuisance_scale", 0.5)
    assert entry_with_defaults("dataset", synth)["nuisance_scale"] == 0.5
    architecture = entry_with_defaults("architecture", {"model": "m", "input_size": 8})
    assert architecture == {"model": "m", "input_size": 8, "pretrained": "none", "arch_kwargs": {}}
    architecture["arch_kwargs"]["aux_logits"] = True  # a copy of the schema's default, not it
    assert entry_with_defaults("architecture", {"model": "m", "input_size": 8})["arch_kwargs"] == {}


def test_limited_data_recipes_are_derived(paper):
    config = validate_config(paper)
    assert resolve_recipe(config, "ls0.1-n2500")["training_set_size"] == 2500
    assert resolve_recipe(config, "ls0.1-n2500")["alpha"] == 0.1
    with pytest.raises(ConfigError, match="unknown recipe 'ls0.3-n10'"):
        resolve_recipe(config, "ls0.3-n10")


def test_seed_replicates_are_derived(paper):
    config = validate_config(_edit(paper, "seeds", [42, 7]))
    replicate = resolve_recipe(config, "ls0.1-n2500-s7")
    assert replicate == {**resolve_recipe(config, "ls0.1-n2500"), "seed": 7}
    assert resolve_recipe(config, "ls0.1")["seed"] == 42
    with pytest.raises(ConfigError, match="unknown recipe 'ls0.3'"):
        resolve_recipe(config, "ls0.3-s7")


def test_seeds_default_to_the_training_seed_and_must_start_with_it(paper):
    assert validate_config(paper)["seeds"] == [42]
    assert "the first seed (7) is the run on the plain paths and must equal 'training.seed' = 42" in (
        _error(_edit(paper, "seeds", [7, 42])))
    assert "config key 'seeds'" in _error(_edit(paper, "seeds", [42, 42]))
    recipes = {**paper["recipes"], "hard-s2": {"alpha": 0.0}}
    assert "'recipes.hard-s2': a recipe name must not end in" in _error(
        _edit(paper, "recipes", recipes))


def test_dataset_attack_overrides(paper):
    config = validate_config(paper)
    assert attack_settings(config, "celeba")["sample"]["search_space_size"] == 5000
    assert attack_settings(config, "celeba")["sample"]["candidates_per_class"] == 200
    assert attack_settings(config, "facescrub")["optimise"]["iterations"] == 50


def test_unreadable_config_file_is_named(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("experiment: demo\ndatasets:\n  synth: [unclosed\n  other: 1\n")
    with pytest.raises(ConfigError, match=r"broken.yaml:4:\d+: YAML syntax error"):
        load_config(path)
    with pytest.raises(ConfigError, match="missing.yaml: cannot read the config"):
        load_config(tmp_path / "missing.yaml")


def test_recipe_named_dots_is_refused(demo):
    config = copy.deepcopy(demo)
    config["recipes"][".."] = {}
    assert "'recipes': '..' is not allowed here (a recipe name names a folder" in _error(config)


def test_nested_command_line_values_are_typed_as_yaml():
    parsed = {"experiment": "x", "attack": {"optimise": {"iterations": "3", "lr": "0.05"},
                                            "classes": "all", "flags": ["true", "null", "a b"]}}
    assert typed_command_line_config(parsed) == {
        "attack": {"optimise": {"iterations": 3, "lr": 0.05}, "classes": "all",
                   "flags": [True, None, "a b"]}}


def test_attack_sizes_must_nest_per_dataset(demo):
    config = _edit(demo, "attack/sample/candidates_per_class", 16)
    config = _edit(config, "attack/select/final_per_class", 17)
    assert ("'attack.select.final_per_class' (dataset synth): 17 exceeds "
            "'attack.sample.candidates_per_class' = 16") in _error(config)
    config = _edit(config, "attack/select/final_per_class", 8)
    config = _edit(config, "datasets/synth/attack", {"sample": {"search_space_size": 10}})
    assert ("'attack.sample.candidates_per_class' (dataset synth): 16 exceeds "
            "'attack.sample.search_space_size' = 10") in _error(config)


from lsmia.config import (
    ConfigError,
    attack_settings,
    entry_with_defaults,
    load_config,
    resolve_recipe,
    typed_command_line_config,
    validate_config,
    with_runtime_settings,
    without_runtime_settings,
)


def test_eval_batch_size_stays_out_of_recipe_params_and_comes_back_from_the_config(paper):
    config = validate_config(paper)
    config["recipes"]["eval-celeba"]["eval_batch_size"] = 17
    for name in ("hard", "ls0.1-n100-s43", "eval-celeba"):
        params = recipe_without_runtime_settings(resolve_recipe(config, name))
        assert "eval_batch_size" not in params
        job = recipe_with_runtime_settings(params, config, name)
        assert job == resolve_recipe(config, name)
    assert recipe_with_runtime_settings({}, config, "eval-celeba")["eval_batch_size"] == 17
    implicit = recipe_with_runtime_settings({}, config, "not-a-recipe")  # e.g. an implicit public
    assert implicit["eval_batch_size"] == config["training"]["eval_batch_size"] == 256


def test_attack_runtime_keys_stay_out_of_params_and_come_back_from_the_config(paper):
    config = validate_config(_edit(paper, "datasets/celeba/attack/optimise/compile_target", True))
    for dataset, compiled in (("facescrub", False), ("celeba", True)):
        params = without_runtime_settings(attack_settings(config, dataset))
        assert "compile_target" not in params["optimise"] and "iterations" in params["optimise"]
        assert "batch_size" not in params["sample"] and "batch_size" not in params["select"]
        assert params == without_runtime_settings(attack_settings(validate_config(paper), dataset))
        job = with_runtime_settings(params, config, dataset)
        assert job == attack_settings(config, dataset)
        assert job["optimise"]["compile_target"] is compiled


def test_defaults_are_filled_only_in_the_form_a_value_takes():
    from lsmia.config import _fill_defaults

    def form(kind: str, key: str) -> dict:
        return {"required": ["kind"], "properties": {"kind": {"const": kind}, key: {"default": kind}}}

    values = [{"kind": "a"}, {"kind": "b"}]
    _fill_defaults(values, {"items": {"oneOf": [form("a", "x"), form("b", "y")]}})
    assert values == [{"kind": "a", "x": "a"}, {"kind": "b", "y": "b"}]
    value = {"kind": "b"}
    _fill_defaults(value, {"if": form("a", "x"), "then": form("a", "z"), "not": form("c", "w")})
    assert value == {"kind": "b"}
