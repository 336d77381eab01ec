"""Join model, attack and knowledge metrics into one row per attack (the input of every artefact).

The rows are the plan's (``lsmia.plan``: ``Artefact.rows()``, ``Plan.claim_rows()``): each names
its attack and the files to read, so nothing here reads run names. Each row is keyed by (dataset,
architecture, recipe_sample, recipe_optimise, recipe_select, seed), the recipes shown by their
label (``<recipe>[-n<N>]``; a seed replicate appears under its recipe's label with its ``seed``).
When the three stages attack the same run, ``recipe`` is its label and the row carries the
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

from lsmia.io import load_json
from lsmia.plan.names import STAGES
from lsmia.plan.runs import Attack, RowFiles

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


def collect_rows(sources: Iterable[RowFiles]) -> pd.DataFrame:
    """One row per attack of ``sources`` (the plan's rows of an artefact, in its order), with its
    target model's and, where given, its knowledge-extraction metrics.

    The row's identity (dataset, architecture, runs per stage, seed) is the plan's; the files give
    the numbers. Raises ``MetricsInputError`` naming the file and key for a missing file, a missing
    or non-numeric key, or a file whose recorded seed is not the plan's.
    """
    rows = [_row(source) for source in sources]
    if not rows:
        raise MetricsInputError("no attack metrics files were given")
    frame = pd.DataFrame(rows)
    for column in (
        "xi_train",
        "xi_test",
        *OPTIONAL_ATTACK_METRICS,
        "test_accuracy",
        "ece",
        "alpha",
        "num_train_images",
        "defence",
        "defence_params",
        "model_file",
        "knowledge_file",
    ):
        if column not in frame:
            frame[column] = None
    return frame.astype({"num_train_images": "Int64", "seed": "Int64"})


def _identity(attack: Attack) -> dict:
    target = attack.target
    return {
        "dataset": attack.dataset,
        "architecture": attack.architecture,
        "recipe": target.label if target else None,
        **{f"recipe_{stage}": run.label for stage, run in zip(STAGES, attack.stages)},
        "stage_ablation": target is None,
        "seed": attack.seed,
    }


def _row(source: RowFiles) -> dict:
    seed = source.attack.seed
    row = {**_identity(source.attack), **_read_attack(source.attack_metrics, seed)}
    row["attack_file"] = str(source.attack_metrics)
    per_class = dict(row.pop("per_class"))
    if source.target_metrics is not None:
        model = _read_model(source.target_metrics, seed)
        per_class.update(model.pop("per_class"))
        row.update(model, model_file=str(source.target_metrics))
    if source.knowledge is not None:
        knowledge = _read_knowledge(source.knowledge)
        per_class.update(knowledge.pop("per_class"))
        row.update(knowledge, knowledge_file=str(source.knowledge))
    row["per_class"] = per_class
    return row


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


def _read_model(path: PathLike, seed: int) -> dict:
    path, data = _load(path)
    defence = _get(path, data, "defence")
    if defence is None:
        label, params = None, None
    elif isinstance(defence, dict):
        label = defence.get("name")
        if not isinstance(label, str) or not label:
            raise MetricsInputError(f"{path}: key 'defence' must name the defence under 'name'")
        params = json.dumps({k: v for k, v in defence.items() if k != "name"}, sort_keys=True)
    else:
        raise MetricsInputError(f"{path}: key 'defence' must be null or an object, got {defence!r}")
    _check_seed(path, _get(path, data, "seed"), seed)
    return {
        "alpha": _number(path, data, "alpha"),
        "per_class": _per_class(path, data),
        "test_accuracy": _number(path, data, "test_accuracy"),
        "ece": _number(path, data, "ece"),
        "num_train_images": _count(path, data, "num_train_images"),
        "defence": label,
        "defence_params": params,
    }


def _check_seed(path: Path, recorded: Any, seed: int) -> None:
    """The seed a file records (its provenance) must be the plan's seed of its row."""
    if isinstance(recorded, bool) or not isinstance(recorded, int):
        raise MetricsInputError(f"{path}: key 'seed' must be an integer, got {recorded!r}")
    if recorded != seed:
        raise MetricsInputError(f"{path}: recorded seed {recorded} differs from the plan's seed "
                                f"{seed} of this run (a stale file?)")


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


def _read_attack(path: PathLike, seed: int) -> dict:
    path, data = _load(path)
    _check_seed(path, data.get("seed", data.get("provenance", {}).get("seed")), seed)
    row = {}
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
    return row


def _read_knowledge(path: PathLike) -> dict:
    path, data = _load(path)
    values = {name: _number(path, data, name) for name in ("xi_train", "xi_test")}
    values["per_class"] = _per_class(path, data)
    return values
