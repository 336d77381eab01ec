"""Join model, attack and knowledge metrics into one row per attack (the input of every artefact).

Each row is keyed by (dataset, architecture, recipe_sample, recipe_optimise, recipe_select, seed).
Runs of a seed replicate (``<recipe>-s<seed>``) are shown under their recipe's name with their
``seed``. When the three stage recipes are equal, ``recipe`` is that recipe and the row carries the
target model's metrics; otherwise it is a stage-ablation row (``stage_ablation`` true, ``recipe``
missing) and only carries attack metrics, because no single target model belongs to it.

``per_class`` holds, per metric, ``{class label: value}`` where the inputs give per-class values
(attack metrics, ξ, the target's test accuracy): the paired claims statistics use them.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lsmia.config import split_replicate
from lsmia.io import load_json

STAGES = ("sample", "optimise", "select")
ATTACK_METRICS = (
    "acc1",
    "acc5",
    "acc1_unselected",
    "acc5_unselected",
    "delta_face",
    "delta_eval",
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
    "target_confidence",
)
OPTIONAL_ATTACK_METRICS = ("code_distance", "nearest_identity_accuracy")
COUNT_METRICS = ("num_classes", "images_per_class")
FRACTION_KEYS = frozenset(
    {
        "acc1",
        "acc5",
        "acc1_unselected",
        "acc5_unselected",
        "target_confidence",
        "precision",
        "recall",
        "coverage",
        "nearest_identity_accuracy",
        "test_accuracy",
        "ece",
        "xi_train",
        "xi_test",
    }
)
EXTRACTOR_ROLES = ("eval", "face", "fid")
KEY_COLUMNS = ("dataset", "architecture", "recipe_sample", "recipe_optimise", "recipe_select",
               "seed")

PathLike = str | os.PathLike


class MetricsInputError(ValueError):
    """An input metrics file is missing, malformed or does not join with the others."""


def collect_rows(
    model_jsons: Iterable[PathLike],
    attack_jsons: Iterable[PathLike],
    knowledge_jsons: Iterable[PathLike] = (),
) -> pd.DataFrame:
    """One row per attack, with its target model's and its knowledge-extraction metrics.

    Raises ``MetricsInputError`` naming the file and key for a missing file, a missing or
    non-numeric key, a duplicate, an attack whose target model is not among ``model_jsons``, or a
    knowledge file that matches no attack. Attacks without a knowledge file get missing ξ values;
    model files that no attack uses are ignored.
    """
    models = _index(_read_model(p) for p in model_jsons)
    attacks = _index(_read_attack(p) for p in attack_jsons)
    knowledge = _index(_read_knowledge(p) for p in knowledge_jsons)
    if not attacks:
        raise MetricsInputError("no attack metrics files were given")

    for key, (path, _) in knowledge.items():
        if key not in attacks:
            raise MetricsInputError(
                f"{path}: knowledge metrics for {_describe(key)} match no attack"
            )

    rows = []
    for key, (attack_path, attack) in attacks.items():
        row = dict(attack)
        row["attack_file"] = str(attack_path)
        per_class = dict(row.pop("per_class"))
        if not row["stage_ablation"]:
            model_key = key[:2] + (key[3],)
            if model_key not in models:
                raise MetricsInputError(
                    f"{attack_path}: no target model metrics for dataset={key[0]!r}, "
                    f"architecture={key[1]!r}, recipe={key[3]!r} among the model files"
                )
            model_path, model = models[model_key]
            model = dict(model)
            per_class.update(model.pop("per_class"))
            if model["seed"] != row["seed"]:
                raise MetricsInputError(f"{attack_path}: attack seed {row['seed']} differs from "
                                        f"its target's seed {model['seed']} ({model_path})")
            row.update(model)
            row["model_file"] = str(model_path)
        if key in knowledge:
            knowledge_path, values = knowledge[key]
            values = dict(values)
            per_class.update(values.pop("per_class"))
            row.update(values)
            row["knowledge_file"] = str(knowledge_path)
        row["per_class"] = per_class
        rows.append(row)

    frame = pd.DataFrame(rows)
    for column in (
        "xi_train",
        "xi_test",
        *OPTIONAL_ATTACK_METRICS,
        "test_accuracy",
        "ece",
        "alpha",
        "num_train_images",
        "seed",
        "defence",
        "defence_params",
        "model_file",
        "knowledge_file",
    ):
        if column not in frame:
            frame[column] = None
    frame = frame.astype({"num_train_images": "Int64", "seed": "Int64"})
    frame = frame.sort_values(list(KEY_COLUMNS), kind="stable").reset_index(drop=True)
    return frame


def _index(records: Iterable[tuple[Path, tuple, dict]]) -> dict[tuple, tuple[Path, dict]]:
    index: dict[tuple, tuple[Path, dict]] = {}
    for path, key, values in records:
        if key in index:
            raise MetricsInputError(
                f"{path}: {_describe(key)} is also given by {index[key][0]} (duplicate input)"
            )
        index[key] = (path, values)
    return index


def _describe(key: tuple) -> str:
    names = ("dataset", "architecture", "recipe") if len(key) == 3 else KEY_COLUMNS
    return ", ".join(f"{name}={value!r}" for name, value in zip(names, key))


def _load(path: PathLike) -> tuple[Path, dict]:
    path = Path(path)
    if not path.is_file():
        raise MetricsInputError(f"{path}: metrics file not found")
    try:
        data = load_json(path)
    except ValueError as err:
        raise MetricsInputError(str(err)) from err
    if not isinstance(data, dict):
        raise MetricsInputError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return path, data


def _get(path: Path, data: Mapping, key: str, where: str = "") -> Any:
    if key not in data:
        raise MetricsInputError(f"{path}: missing key {where}{key!r}")
    return data[key]


def _text(path: Path, data: Mapping, key: str, where: str = "") -> str:
    value = _get(path, data, key, where)
    if not isinstance(value, str) or not value:
        raise MetricsInputError(
            f"{path}: key {where}{key!r} must be a non-empty string, got {value!r}"
        )
    return value


def _number(path: Path, data: Mapping, key: str, where: str = "") -> float:
    value = _get(path, data, key, where)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetricsInputError(
            f"{path}: key {where}{key!r} must be a finite number, got {value!r}"
        )
    if key in FRACTION_KEYS and not 0.0 <= value <= 1.0:
        raise MetricsInputError(
            f"{path}: key {where}{key!r} must be a fraction in [0, 1], got {value!r}"
        )
    return float(value)


def _count(path: Path, data: Mapping, key: str, where: str = "") -> int:
    value = _get(path, data, key, where)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise MetricsInputError(
            f"{path}: key {where}{key!r} must be a positive integer, got {value!r}"
        )
    return value


def _read_model(path: PathLike) -> tuple[Path, tuple, dict]:
    path, data = _load(path)
    key = tuple(_text(path, data, name) for name in ("dataset", "architecture", "recipe"))
    defence = _get(path, data, "defence")
    if defence is None:
        label, params = None, None
    elif isinstance(defence, dict):
        label = defence.get("name", defence.get("method"))
        if not isinstance(label, str) or not label:
            raise MetricsInputError(f"{path}: key 'defence' must name the defence under 'name'")
        params = json.dumps(
            {k: v for k, v in defence.items() if k not in ("name", "method")}, sort_keys=True
        )
    else:
        raise MetricsInputError(f"{path}: key 'defence' must be null or an object, got {defence!r}")
    seed = _get(path, data, "seed")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MetricsInputError(f"{path}: key 'seed' must be an integer, got {seed!r}")
    values = {
        "alpha": _number(path, data, "alpha"),
        "seed": seed,
        "per_class": _per_class(path, data),
        "test_accuracy": _number(path, data, "test_accuracy"),
        "ece": _number(path, data, "ece"),
        "num_train_images": _count(path, data, "num_train_images"),
        "defence": label,
        "defence_params": params,
    }
    return path, key, values


def _stage_recipes(path: Path, data: Mapping) -> tuple[str, str, str]:
    recipes = _get(path, data, "recipes")
    if not isinstance(recipes, dict):
        raise MetricsInputError(f"{path}: key 'recipes' must be an object with {list(STAGES)}")
    return tuple(_text(path, recipes, stage, "recipes.") for stage in STAGES)


def _row_identity(path: Path, data: Mapping) -> tuple[tuple, dict]:
    dataset = _text(path, data, "dataset")
    architecture = _text(path, data, "architecture")
    stages = _stage_recipes(path, data)
    bases = tuple(split_replicate(recipe)[0] for recipe in stages)
    uniform = len(set(stages)) == 1
    identity = {
        "dataset": dataset,
        "architecture": architecture,
        "recipe": bases[1] if uniform else None,
        **{f"recipe_{stage}": recipe for stage, recipe in zip(STAGES, bases)},
        "stage_ablation": not uniform,
        "seed": _seed(path, data),
    }
    return (dataset, architecture, *stages), identity


def _seed(path: Path, data: Mapping) -> int:
    """The attack's seed (``seed``, or that of its provenance in files that predate it)."""
    seed = data.get("seed", data.get("provenance", {}).get("seed"))
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise MetricsInputError(f"{path}: key 'seed' must be an integer, got {seed!r}")
    return seed


def _per_class(path: Path, data: Mapping, where: str = "") -> dict[str, dict[int, float]]:
    """``per_class`` (``classes`` and one list per metric) as ``{metric: {class: value}}``; a file
    without it gives ``{}`` (the claims that need it then say so)."""
    section = data.get("per_class")
    if section is None:
        return {}
    classes = _get(path, section, "classes", f"{where}per_class.")
    if not isinstance(classes, list) or not all(isinstance(c, int) for c in classes):
        raise MetricsInputError(f"{path}: key {where}per_class.'classes' must be a list of labels")
    out = {}
    for name, values in section.items():
        if name == "classes":
            continue
        if not isinstance(values, list) or len(values) != len(classes):
            raise MetricsInputError(f"{path}: key {where}per_class.{name!r} must be a list of "
                                    f"{len(classes)} numbers, one per class")
        for index in range(len(values)):
            _number(path, {name: values[index]}, name, f"{where}per_class.")
        out[name] = dict(zip(classes, map(float, values)))
    return out


def _read_attack(path: PathLike) -> tuple[Path, tuple, dict]:
    path, data = _load(path)
    key, row = _row_identity(path, data)
    metrics = _get(path, data, "metrics")
    if not isinstance(metrics, dict):
        raise MetricsInputError(f"{path}: key 'metrics' must be an object")
    for name in ATTACK_METRICS:
        row[name] = _number(path, metrics, name, "metrics.")
    for name in COUNT_METRICS:
        row[name] = _count(path, metrics, name, "metrics.")
    for name in OPTIONAL_ATTACK_METRICS:
        row[name] = _number(path, metrics, name, "metrics.") if name in metrics else None
    row["per_class"] = _per_class(path, metrics, "metrics.")
    extractors = _get(path, data, "extractors")
    if not isinstance(extractors, dict):
        raise MetricsInputError(
            f"{path}: key 'extractors' must be an object with {list(EXTRACTOR_ROLES)}"
        )
    for role in EXTRACTOR_ROLES:
        row[f"extractor_{role}"] = _text(path, extractors, role, "extractors.")
    synthetic = _get(path, data, "synthetic")
    if not isinstance(synthetic, bool):
        raise MetricsInputError(f"{path}: key 'synthetic' must be true or false, got {synthetic!r}")
    row["synthetic"] = synthetic
    return path, key, row


def _read_knowledge(path: PathLike) -> tuple[Path, tuple, dict]:
    path, data = _load(path)
    dataset = _text(path, data, "dataset")
    architecture = _text(path, data, "architecture")
    if "recipes" in data:
        stages = _stage_recipes(path, data)
    else:
        stages = (_text(path, data, "recipe"),) * 3
    values = {name: _number(path, data, name) for name in ("xi_train", "xi_test")}
    values["per_class"] = _per_class(path, data)
    return path, (dataset, architecture, *stages), values
