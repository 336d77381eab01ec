# Configuration, validation, wildcard constraints and path helpers shared by every rule file.
import os

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

from lsmia.cluster import job_threads, max_runtime, wall_time
from lsmia.config import (
    ConfigError,
    attack_settings,
    deep_merge,
    entry_with_defaults,
    identity_problems,
    known_identities,
    recipe_without_runtime_settings,
    resolve_recipe,
    typed_command_line_config,
    validate_config,
    without_runtime_settings,
)
from lsmia.plan.names import alternatives, run_name_pattern
from lsmia.plan.experiment import build_plan

try:
    _validated = validate_config(
        deep_merge(config, typed_command_line_config(workflow.config_settings.config))
    )
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)
PLAN = build_plan(config)  # what is trained, attacked, measured and shown (lsmia.plan)

EXP = config["experiment"]
RES = PLAN.layout.root  # results/<experiment>
LOGS = f"logs/{EXP}"
BENCH = f"{RES}/benchmarks"
DATASETS = config["datasets"]
ARCHS = config["architectures"]


_RECIPE_RE = run_name_pattern(config["recipes"])


wildcard_constraints:
    dataset=alternatives(DATASETS),
    arch=alternatives(ARCHS),
    recipe=_RECIPE_RE,
    rs=_RECIPE_RE,
    ro=_RECIPE_RE,
    rsel=_RECIPE_RE,
    part="private|public",


# Job sizes for the paper on one A100-class GPU; profiles override them only where a cluster needs.
MAX_RUNTIME = max_runtime()


def runtime(minutes, resumable=False):
    """The ``runtime`` resource (minutes): the same on every attempt for a job that resumes from its
    checkpoint, ``minutes`` × attempt for others; never above LSMIA_MAX_RUNTIME (default 24 h)."""
    return lambda wildcards, attempt: wall_time(minutes, attempt, resumable, MAX_RUNTIME)


def memory(mb):
    """The ``mem_mb`` resource: ``mb`` × attempt (a job killed for memory gets more next time)."""
    return lambda wildcards, attempt: mb * attempt


PACKED_FILES = ("images.npy", "index.csv", "manifest.json")


def _check_prepared_identities():
    """Keys that count identities, against datasets whose count only preparation tells (FaceScrub)
    and which are prepared already; otherwise the preparation job checks them before decoding."""
    import json

    problems = []
    for name, spec in DATASETS.items():
        manifest_path = f"{RES}/data/{name}/private/manifest.json"
        if known_identities(spec) is None and os.path.isfile(manifest_path):
            with open(manifest_path) as handle:
                count = json.load(handle).get("num_classes")
            if count is not None:  # a manifest without it fails verification in the first job
                problems += identity_problems(config, name, count)
    if problems:
        raise WorkflowError("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


_check_prepared_identities()


def packed(dataset, part="private"):
    """The three files of a packed dataset."""
    return [f"{RES}/data/{dataset}/{part}/{name}" for name in PACKED_FILES]


def manifest(dataset, part="private"):
    return f"{RES}/data/{dataset}/{part}/manifest.json"


# Paths of runs and attacks (run arguments are run names): the plan's layout.
target_model = PLAN.layout.target_model
target_metrics = PLAN.layout.target_metrics
attack_dir = PLAN.layout.attack_dir


def evaluation_model(dataset):
    return f"{RES}/models/{dataset}/evaluation/model.pt"


def public_model(arch):
    """An architecture pre-trained on the public synthetic identities (the demo's 'ImageNet')."""
    dataset = next(n for n, d in DATASETS.items() if d["source"] == "synthetic")
    return f"{RES}/models/{dataset}/public/{arch}/model.pt"


def weights_file(key):
    """Where the fetch rule stores the weights registered under ``weights.<key>``."""
    safe = key.replace(":", "_")
    return f"resources/weights/{safe}.pth"


def pretrained_input(arch):
    """The weights an architecture starts from (nothing, ImageNet file, or public pre-training)."""
    spec = entry_with_defaults("architecture", ARCHS[arch])
    kind = spec["pretrained"]
    if kind == "imagenet":
        return weights_file(spec["model"])
    if kind == "public":
        return public_model(arch)
    return []


def recipe_params(recipe):
    return resolve_recipe(config, recipe)


def recipe_rule_params(recipe):
    """A recipe for a rule's params, without the settings that change only speed (the job reads
    them from the config), so that changing those reruns nothing."""
    return recipe_without_runtime_settings(recipe_params(recipe))


def attack_params(dataset, run):
    """The attack settings of one run that change results, seeded with the run's replicate seed;
    the rest reach the job through the config."""
    settings = {**attack_settings(config, dataset), "seed": PLAN.replicate_seed(run)}
    return without_runtime_settings(settings)


def knowledge_recipe(run):
    """The student's recipe, seeded with the replicate seed of the attack it learns from."""
    return {
        **recipe_rule_params(config["metrics"]["knowledge"]["recipe"]),
        "seed": PLAN.replicate_seed(run),
    }


def datasets_of(source):
    """Regex matching the configured datasets of one source (matches nothing if there are none)."""
    names = [name for name, spec in DATASETS.items() if spec["source"] == source]
    return alternatives(names) if names else "(?!)"


def packing_spec(wildcards):
    """A data set's settings without ``raw_dir``: moving the raw release reruns nothing (the job
    reads ``raw_dir`` from the config)."""
    return {k: v for k, v in DATASETS[wildcards.dataset].items() if k != "raw_dir"}


def warn_about_missing_raw_data():
    """Planning needs no data: one warning lists what is missing of every release still to pack
    (the preparation jobs fail with the same list); packed data sets need no raw release."""
    from lsmia.data.raw import missing_raw_releases, raw_data_report

    missing = missing_raw_releases(DATASETS, f"{RES}/data")
    if missing:
        logger.warning(raw_data_report(missing))


warn_about_missing_raw_data()


def generator_inputs(wildcards):
    """Files the attack's image prior needs (none for the procedural demo prior)."""
    spec = config["attack"]["generator"]
    if spec["kind"] == "stylegan2":
        return {"checkout": spec["checkout"], "pickle": spec["pickle"]}
    return {}


EXTRACTORS = ("eval", "face", "fid")


def extractor_spec(dataset, name):
    """How to build a feature extractor: the evaluation model, FaceNet/Inception, or a public model."""
    if name == "eval":
        return {"kind": "model", "path": evaluation_model(dataset), "name": "evaluation-model"}
    spec = dict(config["metrics"][name])
    if spec["kind"] == "public_model":
        arch = spec["architecture"]
        return {"kind": "model", "path": public_model(arch), "name": f"public-{arch}"}
    return {
        "kind": spec["kind"],
        "path": weights_file(spec["weights"]),
        "name": spec["weights"],
        "input_scaling": spec["input_scaling"],
    }


def embeddings_file(dataset, name):
    return f"{RES}/embeddings/{dataset}/{name}.pt"


def _evaluation_inputs(wildcards):
    spec = DATASETS[wildcards.dataset]["evaluation"]
    inputs = {
        "data": packed(wildcards.dataset),
        "pretrained": pretrained_input(spec["architecture"]),
    }
    if spec.get("init_from"):
        inputs["init"] = evaluation_model(spec["init_from"])
    if recipe_params(spec["recipe"]).get("init"):
        inputs["imported"] = recipe_params(spec["recipe"])["init"]
    return inputs


def _metrics_inputs(wildcards):
    dataset = wildcards.dataset
    inputs = {
        "selected": f"{attack_dir(dataset, wildcards.arch, wildcards.rs, wildcards.ro, wildcards.rsel)}/select.pt",
        "optimised": f"{attack_dir(dataset, wildcards.arch, wildcards.rs, wildcards.ro)}/optimise.pt",
        "data": packed(dataset),
        "evaluation_model": evaluation_model(dataset),
        **{f"embeddings_{name}": embeddings_file(dataset, name) for name in EXTRACTORS},
        **{f"extractor_{name}": extractor_spec(dataset, name)["path"] for name in ("face", "fid")},
        **generator_inputs(wildcards),
    }
    if DATASETS[dataset]["source"] == "synthetic":
        inputs["private_codes"] = f"{RES}/data/{dataset}/private/identity_codes.npy"
    return inputs
