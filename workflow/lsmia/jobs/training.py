"""Train one model (target, evaluation model, public pre-training) and write its file and metrics."""

from __future__ import annotations

import logging
from pathlib import Path

from lsmia.config import entry_with_defaults
from lsmia.data.packed import PackedDataset
from lsmia.io import save_json
from lsmia.models import import_checkpoint, save_model
from lsmia.provenance import provenance
from lsmia.runtime import resolve_device
from lsmia.training.recipe import build_model
from lsmia.training.trainer import clear_checkpoint, train

log = logging.getLogger("lsmia")


def train_job(
    *,
    data_dir: str | Path,
    out_model: str | Path,
    out_metrics: str | Path,
    dataset: str,
    architecture: str,
    arch_spec: dict,
    recipe_name: str,
    recipe: dict,
    pretrained: str | Path | None,
    device: str,
    workdir: str | Path,
    log_csv: str | Path,
) -> dict:
    """Train ``arch_spec`` with ``recipe`` on the packed dataset at ``data_dir``.

    ``pretrained`` is a weights file (ImageNet, public pre-training, or the evaluation model of
    another dataset); ``recipe["init"]`` imports an external checkpoint instead (e.g. published
    targets; with ``epochs: 0`` the import is the model). The checkpoint folder ``workdir`` is
    removed once the model file is written.
    """
    device = resolve_device(device)
    train_set = PackedDataset(data_dir, split="train")
    test_set = PackedDataset(data_dir, split="test")
    input_size = arch_spec["input_size"]
    arch_kwargs = dict(entry_with_defaults("architecture", arch_spec)["arch_kwargs"])
    model = _starting_model(arch_spec, arch_kwargs, recipe, pretrained, train_set.num_classes)
    if recipe.get("init") and recipe["epochs"] == 0:
        log.info("imported %s as %s/%s/%s: 0 epochs, no training; measuring test accuracy",
                 recipe["init"], dataset, architecture, recipe_name)
    else:
        log.info("training %s/%s/%s on %s (%d train, %d test images, %d classes)", dataset,
                 architecture, recipe_name, device, len(train_set), len(test_set),
                 train_set.num_classes)
    metrics = train(model, recipe, train_set, test_set, device=device, workdir=workdir,
                    log_csv=log_csv, input_size=input_size)
    names = {"dataset": dataset, "architecture": architecture, "recipe": recipe_name}
    record, meta = _record_and_meta(names, arch_spec, arch_kwargs, recipe, pretrained, metrics,
                                    train_set)
    save_model(out_model, model, meta)
    save_json(record, out_metrics)
    clear_checkpoint(workdir)
    log.info("test accuracy %.4f, ECE %.4f", metrics["test_accuracy"], metrics["test_ece"])
    return record


def _starting_model(arch_spec: dict, arch_kwargs: dict, recipe: dict, pretrained,
                    num_classes: int):
    """The model before training: an imported external checkpoint (``recipe["init"]``), or
    ``arch_spec``'s model built from ``pretrained`` weights (or at random)."""
    if recipe.get("init"):
        return import_checkpoint(recipe["init"], arch_spec["model"], num_classes,
                                 arch_spec["input_size"], arch_kwargs=arch_kwargs)
    return build_model(arch_spec["model"], num_classes, recipe, pretrained=pretrained or None,
                       arch_kwargs=arch_kwargs)


def _record_and_meta(names: dict, arch_spec: dict, arch_kwargs: dict, recipe: dict, pretrained,
                     metrics: dict, train_set: PackedDataset) -> tuple[dict, dict]:
    """The metrics file's record and the model file's metadata; ``names``: ``dataset``,
    ``architecture`` and ``recipe``."""
    record = {
        "dataset": names["dataset"],
        "architecture": names["architecture"],
        "model": arch_spec["model"],
        "recipe": names["recipe"],
        "alpha": float(recipe["alpha"]),
        "seed": int(recipe["seed"]),
        "test_accuracy": metrics["test_accuracy"],
        "ece": metrics["test_ece"],
        "num_train_images": metrics["train_images"],
        "num_test_images": metrics["test_images"],
        "num_classes": train_set.num_classes,
        "train_loss": metrics["train_loss"],
        "train_accuracy": metrics["train_accuracy"],
        "per_class": metrics.get("test_per_class"),
        "defence": recipe.get("defence"),
        "pretrained": str(pretrained) if pretrained else None,
        "resolved_recipe": recipe,
        "provenance": provenance(seed=int(recipe["seed"])),
    }
    meta = {
        "arch": arch_spec["model"],
        "arch_kwargs": arch_kwargs,
        "num_classes": train_set.num_classes,
        "input_size": arch_spec["input_size"],
        "defence": recipe.get("defence"),
        **names,
        "resolved_recipe": recipe,
        "identities": list(train_set.identities),
        "epoch": recipe["epochs"],
        "test_accuracy": metrics["test_accuracy"],
        "provenance": record["provenance"],
    }
    return record, meta
