# Configuration, validation, wildcard constraints and path helpers shared by every rule file.
import re

from snakemake.exceptions import WorkflowError

from lsmia.config import (
    ConfigError,
    attack_settings_for,
    replicate_name,
    replicate_seed,
    resolve_recipe,
    validate_config,
)

try:
    _validated = validate_config(config)
except ConfigError as err:
    raise WorkflowError(str(err)) from None
config.clear()
config.update(_validated)

EXP = config["experiment"]
RES = f"results/{EXP}"
LOGS = f"logs/{EXP}"
BENCH = f"{RES}/benchmarks"
DATASETS = config["datasets"]
ARCHS = config["architectures"]


def _alternatives(names):
    return "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))


_RECIPE_RE = f"(?:{_alternatives(config['recipes'])})(?:-n[0-9]+)?(?:-s[0-9]+)?"

wildcard_constraints:
    dataset=_alternatives(DATASETS),
    arch=_alternatives(ARCHS),
    recipe=_RECIPE_RE,
    rs=_RECIPE_RE,
    ro=_RECIPE_RE,
    rsel=_RECIPE_RE,
    part="private|public",


PACKED_FILES = ("images.npy", "index.csv", "manifest.json")


def packed(dataset, part="private"):
    """The three files of a packed dataset."""
    return [f"{RES}/data/{dataset}/{part}/{name}" for name in PACKED_FILES]


def manifest(dataset, part="private"):
    return f"{RES}/data/{dataset}/{part}/manifest.json"


def target_model(dataset, arch, recipe):
    return f"{RES}/models/{dataset}/{arch}/{recipe}/model.pt"


def target_metrics(dataset, arch, recipe):
    return f"{RES}/models/{dataset}/{arch}/{recipe}/metrics.json"


def evaluation_model(dataset):
    return f"{RES}/models/{dataset}/evaluation/model.pt"


def public_model(arch):
    """An architecture pre-trained on the public synthetic identities (the demo's 'ImageNet')."""
    dataset = next(n for n, d in DATASETS.items() if d["source"] == "synthetic")
    return f"{RES}/models/{dataset}/public/{arch}/model.pt"


def attack_dir(dataset, arch, rs, ro=None, rsel=None):
    parts = [f"{RES}/attacks/{dataset}/{arch}", rs] + [r for r in (ro, rsel) if r]
    return "/".join(parts)


def attack_metrics_file(dataset, arch, recipe, ro=None, rsel=None):
    """metrics.json of an attack; one recipe means all three stages use that model."""
    return f"{attack_dir(dataset, arch, recipe, ro or recipe, rsel or recipe)}/metrics.json"


def knowledge_file(dataset, arch, recipe):
    return f"{attack_dir(dataset, arch, recipe, recipe, recipe)}/knowledge.json"


def gradient_log(dataset, arch, recipe):
    return f"{attack_dir(dataset, arch, recipe, recipe)}/gradients.csv"


def weights_file(key):
    """Where the fetch rule stores the weights registered under ``weights.<key>``."""
    safe = key.replace(":", "_")
    return f"resources/weights/{safe}.pth"


def pretrained_input(arch):
    """The weights an architecture starts from (nothing, ImageNet file, or public pre-training)."""
    spec = ARCHS[arch]
    kind = spec.get("pretrained", "none")
    if kind == "imagenet":
        return weights_file(spec["model"])
    if kind == "public":
        return public_model(arch)
    return []


def recipe_params(recipe):
    return resolve_recipe(config, recipe)


def attack_params(dataset, run):
    """The attack settings of one run: its replicate seed (`<recipe>-s<seed>`, else `seeds[0]`)."""
    return attack_settings_for(config, dataset, run)


def datasets_of(source):
    """Regex matching the configured datasets of one source (matches nothing if there are none)."""
    names = [name for name, spec in DATASETS.items() if spec["source"] == source]
    return _alternatives(names) if names else "(?!)"


def raw_input(dataset):
    """Input function: the raw release of a dataset, checked before any job starts."""

    def checked(wildcards):
        from lsmia.data.raw import missing_raw_data

        spec = DATASETS[wildcards.dataset]
        problem = missing_raw_data(spec["source"], spec["raw_dir"], spec.get("crop", "landmarks"))
        if problem:
            raise WorkflowError(problem)
        return [spec["raw_dir"]]

    return checked


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
    return {"kind": spec["kind"], "path": weights_file(spec["weights"]), "name": spec["weights"]}


def embeddings_file(dataset, name):
    return f"{RES}/embeddings/{dataset}/{name}.pt"
