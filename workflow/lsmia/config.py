"""Load, validate and resolve the workflow configuration (before any job runs)."""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import yaml
from jsonschema import Draft202012Validator, validators

from lsmia.model_names import LSMIA_ARCHITECTURES, is_known_model
from lsmia.plan.names import RunNameError, looks_derived, parse_run_name

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"
_SOURCE_KEYS = {
    "synthetic": ("identities", "public_identities", "images_per_identity"),
    "facescrub": ("raw_dir",),
    "celeba": ("raw_dir", "identities"),
}


class ConfigError(ValueError):
    """The configuration is invalid; the message names every offending key."""


def load_config(path: str | Path) -> dict:
    """Read a YAML config file and validate it."""
    return validate_config(read_config_file(path))


def read_config_file(path: str | Path) -> dict:
    """The mapping in a YAML config file; a syntax error names the file, line and column."""
    try:
        config = yaml.safe_load(Path(path).read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the config ({err})") from err
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: YAML syntax error: {getattr(err, 'problem', None) or err}"
                          ) from err
    if not isinstance(config, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(config).__name__}")
    return config


def validate_config(config: dict) -> dict:
    """Check ``config`` against the schema and its cross-references; return it with the schema's
    defaults filled (``_fill_defaults``) and ``seeds`` defaulting to ``[training.seed]``."""
    config = copy.deepcopy(config)
    problems = [_schema_message(err) for err in _validator().iter_errors(config)]
    if not problems:
        _fill_defaults(config, {"$ref": "#"})
        problems = _reference_problems(config)
    if problems:
        listing = "\n".join(f"  - {p}" for p in sorted(set(problems)))
        raise ConfigError(f"invalid configuration ({len(set(problems))} problem(s)):\n{listing}")
    config.setdefault("seeds", [config["training"]["seed"]])  # after the checks: a given list only
    return config


def entry_with_defaults(kind: str, entry: dict) -> dict:
    """A copy of a ``datasets`` (``kind`` "dataset") or ``architectures`` ("architecture") entry
    with the schema's ``$defs/<kind>_defaults``. Validation leaves such entries as written: they
    are rule params, which a filled default would change (and so rerun their jobs)."""
    filled = copy.deepcopy(entry)
    _fill_defaults(filled, {"$ref": f"#/$defs/{kind}_defaults"})
    return filled


def resolve_recipe(config: dict, name: str) -> dict:
    """The full training recipe of run ``name``: ``training`` defaults overridden by the recipe.

    ``<base>-n<N>`` is ``<base>`` trained on the first N images of the seeded training permutation;
    ``<base>-s<seed>`` is ``<base>`` trained with that seed (a replicate of ``seeds``); the names
    are read by ``lsmia.plan.names``.
    """
    try:
        run = parse_run_name(name, config["recipes"])
    except RunNameError as err:
        raise ConfigError(str(err)) from None
    recipe = deep_merge(config["training"], config["recipes"][run.recipe])
    if run.size is not None:
        recipe["training_set_size"] = run.size
    if run.seed is not None:
        recipe["seed"] = run.seed
    return recipe


def attack_settings(config: dict, dataset: str) -> dict:
    """The attack section with the dataset's overrides applied."""
    override = config["datasets"][dataset].get("attack", {})
    return deep_merge(config["attack"], override)


def typed_command_line_config(values: Mapping) -> dict:
    """``--config`` values typed as in a YAML file. Snakemake reads a nested value such as
    ``attack={optimise: {iterations: 3}}`` with YAML's BaseLoader, which leaves every scalar
    inside it a string ('3', 'true'); top-level values it already types."""
    return {key: _typed(value) for key, value in values.items() if isinstance(value, (Mapping, list))}


def _typed(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    if isinstance(value, str):
        try:
            parsed = yaml.safe_load(value)
        except yaml.YAMLError:
            return value
        return parsed if parsed is None or isinstance(parsed, (bool, int, float)) else value
    return value


def identity_needs(config: dict, dataset: str) -> dict[str, int]:
    """Config keys that count or index identities of ``dataset``: key -> identities it needs."""
    needs = {}
    classes = attack_settings(config, dataset)["classes"]
    if classes != "all":
        needs["attack.classes"] = int(classes)
    for artefact in ("embeddings", "sample_grid"):
        spec = config["artefacts"].get(artefact)
        if spec and spec["dataset"] == dataset:
            value = spec["classes"]
            needs[f"artefacts.{artefact}.classes"] = max(value) + 1 if isinstance(value, list) else value
    return needs


def identity_problems(config: dict, dataset: str, identities: int) -> list[str]:
    """What ``identity_needs`` asks beyond the ``identities`` the dataset has."""
    return [f"config key '{key}' (dataset {dataset}): needs {need} identities, the dataset has "
            f"{identities}" for key, need in identity_needs(config, dataset).items()
            if need > identities]


def known_identities(spec: dict) -> int | None:
    """Identities of a dataset as its config entry fixes them (None for FaceScrub: the raw folders)."""
    if spec["source"] not in ("synthetic", "celeba"):
        return None
    return entry_with_defaults("dataset", spec).get("identities")


def _identity_problems(config: dict) -> list[str]:
    problems = []
    for name, spec in config["datasets"].items():
        if (count := known_identities(spec)) is not None:
            problems += identity_problems(config, name, count)
    grid = config["artefacts"].get("sample_grid")
    if grid and grid["dataset"] in config["datasets"]:
        attacked = attack_settings(config, grid["dataset"])["classes"]
        if attacked != "all" and grid["classes"] > attacked:
            problems.append(f"config key 'artefacts.sample_grid.classes': {grid['classes']} "
                            f"exceeds 'attack.classes' = {attacked} of dataset {grid['dataset']}; "
                            f"the grid shows attacked identities")
    return problems


#: Attack settings that change only speed and memory, never results (beyond float rounding):
#: rules leave them out of ``params:`` (Snakemake reruns a job whose params changed), jobs take
#: them from the config, and the optimisation's resume fingerprint leaves them out.
#: ``optimise.batch_size`` is not among them: it sets the loss average Adam sees and the random crops.
ATTACK_RUNTIME_KEYS = (("sample", "batch_size"), ("optimise", "compile_target"),
                       ("select", "batch_size"))


def without_runtime_settings(attack: dict) -> dict:
    """``attack`` without :data:`ATTACK_RUNTIME_KEYS` (what a rule's params hold)."""
    kept = copy.deepcopy(attack)
    for section, key in ATTACK_RUNTIME_KEYS:
        kept.get(section, {}).pop(key, None)
    return kept


def with_runtime_settings(attack: dict, config: dict, dataset: str) -> dict:
    """The result-defining ``attack`` settings of a job plus the runtime ones from ``config``."""
    current = attack_settings(config, dataset)
    merged = copy.deepcopy(attack)
    for section, key in ATTACK_RUNTIME_KEYS:
        merged.setdefault(section, {})[key] = current[section][key]
    return merged


#: Recipe keys that change only speed and memory: out of rule params and resume fingerprints.
RECIPE_RUNTIME_KEYS = ("eval_batch_size",)


def recipe_without_runtime_settings(recipe: dict) -> dict:
    """``recipe`` without :data:`RECIPE_RUNTIME_KEYS` (what a rule's params hold)."""
    return {key: value for key, value in recipe.items() if key not in RECIPE_RUNTIME_KEYS}


def recipe_with_runtime_settings(recipe: dict, config: dict, name: str) -> dict:
    """``recipe`` plus the runtime keys of recipe ``name`` as ``config`` has them now (``training``'s
    when ``name`` is no recipe of the config, e.g. an implicit ``public``)."""
    try:
        current = resolve_recipe(config, name)
    except ConfigError:
        current = config["training"]
    return {**recipe, **{key: current.get(key) for key in RECIPE_RUNTIME_KEYS}}


def deep_merge(base: dict, override: dict) -> dict:
    """A copy of ``base`` with ``override`` merged in recursively (lists and scalars replace)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


@lru_cache(maxsize=1)
def _validator() -> Draft202012Validator:
    return Draft202012Validator(yaml.safe_load(SCHEMA_PATH.read_text()))


def _fill_defaults(instance: Any, schema: dict) -> None:
    """Fill into a valid ``instance`` every ``default`` of a ``properties`` entry that ``schema``
    reaches: through ``$ref``, ``allOf`` and items, in the one ``oneOf``/``anyOf`` form the
    instance matches and in the ``if`` branch that applies (never under ``not``)."""
    for _ in _default_filler().descend(instance, schema):
        pass


@lru_cache(maxsize=1)
def _default_filler():
    """A Draft 2020-12 validator of the config schema whose walk over a valid instance sets
    defaults (the jsonschema FAQ's recipe, restricted to the branches a value takes)."""
    base = Draft202012Validator.VALIDATORS

    def properties(validator, properties, instance, schema):
        if validator.is_type(instance, "object"):
            for name, subschema in properties.items():
                if "default" in subschema and name not in instance:
                    instance[name] = copy.deepcopy(subschema["default"])
        yield from base["properties"](validator, properties, instance, schema)

    def matching_form(validator, forms, instance, schema):
        for form in forms:
            if _validator().evolve(schema=form).is_valid(instance):
                yield from validator.descend(instance, form)
                return

    def if_then_else(validator, condition, instance, schema):
        branch = "then" if _validator().evolve(schema=condition).is_valid(instance) else "else"
        if branch in schema:
            yield from validator.descend(instance, schema[branch])

    def nothing(validator, value, instance, schema):
        yield from ()

    filler = validators.extend(Draft202012Validator, {
        "properties": properties, "oneOf": matching_form, "anyOf": matching_form,
        "if": if_then_else, "not": nothing,
    })
    # without "$schema": a subschema that names its dialect would be walked by the plain class
    return filler({key: value for key, value in _validator().schema.items() if key != "$schema"})


def _schema_message(error) -> str:
    key = ".".join(str(part) for part in error.absolute_path) or "<top level>"
    if error.validator == "oneOf":
        return _one_of_message(key, error)
    if error.validator == "not" and isinstance(error.instance, str):
        return f"config key '{key}': {error.instance!r} is not allowed here ({error.schema.get('description', 'reserved name')})"
    if error.validator == "enum":
        return f"config key '{key}': {error.instance!r} is not one of {error.validator_value}"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"config key '{key}': {error.message}; allowed keys: {allowed}"
    if error.validator == "propertyNames":
        return f"config key '{key}': invalid name {error.instance!r} ({error.message})"
    return f"config key '{key}': {error.message}"


def _one_of_message(key: str, error) -> str:
    """Forms told apart by a constant ``kind`` or ``name``: name the unknown value and the known
    ones, or report what is wrong within the form the value names."""
    branches = error.validator_value
    nullable = " (or null)" if any(branch.get("type") == "null" for branch in branches) else ""
    for field in ("kind", "name"):
        tags = [branch.get("properties", {}).get(field, {}).get("const") for branch in branches]
        if not any(tags) or not isinstance(error.instance, dict):
            continue
        value = error.instance.get(field)
        if value not in tags:
            known = [tag for tag in tags if tag]
            return f"config key '{key}.{field}': unknown {field} {value!r}; expected one of {known}{nullable}"
        inner = [sub for sub in error.context if sub.relative_schema_path[0] == tags.index(value)]
        if inner:
            return _schema_message(inner[0])
    options = [branch.get("const") or branch.get("type") for branch in branches]
    return f"config key '{key}': {error.instance!r} matches none of the allowed forms {options}"


def _reference_problems(config: dict) -> list[str]:
    """Cross-checks of a schema-valid config with its defaults filled: names that must exist,
    sizes that must nest, seeds and identities that must agree."""
    need = _NameChecks(config)
    _dataset_references(config, need)
    _metrics_references(config, need)
    _artefact_references(config, need)
    return (need.problems + _seed_problems(config) + _architecture_problems(config)
            + _attack_size_problems(config) + _identity_problems(config))


class _NameChecks:
    """Collects a problem for each dataset, architecture or recipe named that does not exist."""

    def __init__(self, config: dict) -> None:
        self.config, self.problems = config, []

    def dataset(self, key: str, name: str) -> None:
        datasets = self.config["datasets"]
        if name not in datasets:
            self.problems.append(
                f"config key '{key}': unknown dataset {name!r}; known: {sorted(datasets)}"
            )

    def architecture(self, key: str, name: str) -> None:
        architectures = self.config["architectures"]
        if name not in architectures:
            self.problems.append(
                f"config key '{key}': unknown architecture {name!r}; known: {sorted(architectures)}"
            )

    def recipe(self, key: str, name: str) -> None:
        try:
            resolve_recipe(self.config, name)
        except ConfigError as err:
            self.problems.append(f"config key '{key}': {err}")


def _dataset_references(config: dict, need: _NameChecks) -> None:
    for name, spec in config["datasets"].items():
        for required in _SOURCE_KEYS[spec["source"]]:
            if required not in spec:
                need.problems.append(
                    f"config key 'datasets.{name}': a {spec['source']} dataset needs '{required}'"
                )
        evaluation = spec["evaluation"]
        need.architecture(f"datasets.{name}.evaluation.architecture", evaluation["architecture"])
        need.recipe(f"datasets.{name}.evaluation.recipe", evaluation["recipe"])
        if evaluation.get("init_from"):
            need.dataset(f"datasets.{name}.evaluation.init_from", evaluation["init_from"])


def _metrics_references(config: dict, need: _NameChecks) -> None:
    for key in ("face", "fid"):
        extractor = config["metrics"][key]
        if extractor["kind"] == "public_model":
            if "input_scaling" in extractor:
                need.problems.append(
                    f"config key 'metrics.{key}.input_scaling': applies to kinds facenet and "
                    "inception only (a public_model sees [−1, 1] images as it was trained)"
                )
            if "architecture" not in extractor:
                need.problems.append(
                    f"config key 'metrics.{key}': kind public_model needs 'architecture'"
                )
            else:
                need.architecture(f"metrics.{key}.architecture", extractor["architecture"])
        elif extractor.get("weights") not in config["weights"]:
            need.problems.append(
                f"config key 'metrics.{key}.weights': {extractor.get('weights')!r} is not a key of "
                f"'weights' (known: {sorted(config['weights'])})"
            )
    knowledge = config["metrics"]["knowledge"]
    need.architecture("metrics.knowledge.architecture", knowledge["architecture"])
    need.recipe("metrics.knowledge.recipe", knowledge["recipe"])


def _artefact_references(config: dict, need: _NameChecks) -> None:
    for artefact, spec in config["artefacts"].items():
        if "dataset" in spec:
            need.dataset(f"artefacts.{artefact}.dataset", spec["dataset"])
        for index, dataset in enumerate(spec.get("datasets", [])):
            need.dataset(f"artefacts.{artefact}.datasets[{index}]", dataset)
        if "architecture" in spec:
            need.architecture(f"artefacts.{artefact}.architecture", spec["architecture"])
        for index, arch in enumerate(spec.get("architectures", [])):
            need.architecture(f"artefacts.{artefact}.architectures[{index}]", arch)
        names = list(spec.get("recipes", [])) + list(spec.get("others", []))
        names += [spec["baseline"]] if "baseline" in spec else []
        for recipe in names:
            need.recipe(f"artefacts.{artefact}.recipes", recipe)


def _seed_problems(config: dict) -> list[str]:
    """Recipe names that would read as derived runs; a first seed other than the configured one."""
    problems = [
        f"config key 'recipes.{name}': a recipe name must not end in '-n<N>' or '-s<seed>' "
        "(those suffixes name a limited training set and a seed replicate)"
        for name in config["recipes"]
        if looks_derived(name)
    ]
    seeds = config.get("seeds")  # not yet defaulted: only a given list must start with the seeds
    for key, seed in (("training.seed", config["training"]["seed"]),
                      ("attack.seed", config["attack"]["seed"])):
        if seeds and seeds[0] != seed:
            problems.append(f"config key 'seeds': the first seed ({seeds[0]}) is the run on the "
                            f"plain paths and must equal '{key}' = {seed}")
    return problems


def _attack_size_problems(config: dict) -> list[str]:
    """Per dataset: search space ≥ candidates per class ≥ final images per class > PRDC's k."""
    problems = []
    prdc_k = config["metrics"]["prdc_k"]
    for name in config["datasets"]:
        settings = attack_settings(config, name)
        sizes = [
            ("attack.sample.search_space_size", settings["sample"]["search_space_size"]),
            ("attack.sample.candidates_per_class", settings["sample"]["candidates_per_class"]),
            ("attack.select.final_per_class", settings["select"]["final_per_class"]),
        ]
        for (big_key, big), (small_key, small) in zip(sizes, sizes[1:]):
            if small > big:
                problems.append(f"config key '{small_key}' (dataset {name}): {small} exceeds "
                                f"'{big_key}' = {big}; expected at most that")
        if sizes[-1][1] <= prdc_k:
            problems.append(f"config key 'attack.select.final_per_class' (dataset {name}): "
                            f"{sizes[-1][1]} images per class leave no k={prdc_k} nearest neighbours "
                            f"for precision/recall; expected more than 'metrics.prdc_k' = {prdc_k}")
    return problems


def _architecture_problems(config: dict) -> list[str]:
    problems = []
    has_public = any(d["source"] == "synthetic" for d in config["datasets"].values())
    for name, spec in config["architectures"].items():
        if not is_known_model(spec["model"]):
            problems.append(
                f"config key 'architectures.{name}.model': unknown model {spec['model']!r}; expected a "
                "timm model name, 'tv:<torchvision ResNet/ResNeXt/WideResNet, DenseNet or inception_v3>' "
                "or an lsmia architecture "
                f"({sorted(LSMIA_ARCHITECTURES)})"
            )
        pretrained = entry_with_defaults("architecture", spec)["pretrained"]
        if pretrained == "imagenet" and spec["model"] not in config["weights"]:
            problems.append(
                f"config key 'architectures.{name}.pretrained': imagenet weights for {spec['model']!r} "
                "need an entry of that name under 'weights' (url, sha256)"
            )
        if pretrained == "public" and not has_public:
            problems.append(
                f"config key 'architectures.{name}.pretrained': 'public' pre-training needs a synthetic "
                "dataset (its public identities)"
            )
    return problems


if __name__ == "__main__":  # python -m lsmia.config FILE...: check config files before a run
    import sys

    for config_path in sys.argv[1:]:
        try:
            load_config(config_path)
        except ConfigError as problem:
            sys.exit(str(problem) if str(problem).startswith(config_path) else f"{config_path}: {problem}")
        print(f"{config_path}: valid")
