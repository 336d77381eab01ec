"""Knowledge extraction score ξ: how much a fresh student learns about the private identities from
the attack images alone (the paper's ResNet-50 student; any lsmia architecture here)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lsmia.data.packed import PackedDataset, write_packed
from lsmia.metrics.per_class import per_class_means

ATTACK_SET = "attack_images"


def knowledge_extraction_score(
    images: torch.Tensor | np.ndarray,
    labels: Sequence[int] | torch.Tensor,
    real_train_set: PackedDataset,
    real_test_set: PackedDataset,
    classes: Sequence[int],
    recipe: Mapping,
    *,
    arch: Mapping,
    device: torch.device | str,
    workdir: str | os.PathLike,
    pretrained: str | os.PathLike | None = None,
    log_csv: str | os.PathLike | None = None,
) -> dict:
    """Train a fresh ``arch`` (``{model, input_size}``; initialised from ``pretrained`` if given)
    with the resolved ``recipe`` only on ``images`` (uint8 ``N×H×W×3`` or ``C×n×H×W×3``) labelled
    with their target class ``labels``, then measure its top-1 accuracy on the real images of
    ``classes`` in ``real_train_set`` (ξ_train) and ``real_test_set`` (ξ_test).

    The student has one output per attacked class (``classes[i]`` is its output ``i``). The attack
    images are written as a packed set in ``workdir/attack_images``; the trainer checkpoints in
    ``workdir`` (a rerun after an interruption resumes; the checkpoint is removed at the end).
    Returns ``xi_train``, ``xi_test``, ``attack_images``, ``real_train_images``,
    ``real_test_images``, ``student`` (architecture name), ``epochs`` and ``per_class``
    (``classes`` and ξ_train, ξ_test of each class, ``per_class.per_class_means``).
    """
    from lsmia.config import entry_with_defaults
    from lsmia.training.recipe import build_model, check_recipe
    from lsmia.training.trainer import clear_checkpoint, train

    recipe = check_recipe(recipe)
    classes = [int(label) for label in classes]
    images, labels = _checked_attack_images(images, labels, classes)
    student_index = {label: position for position, label in enumerate(classes)}
    workdir = Path(workdir)
    attack_set = PackedDataset(_write_attack_set(workdir / ATTACK_SET, images, labels, classes,
                                                 real_train_set.identities, student_index))
    model = build_model(arch["model"], len(classes), recipe, pretrained=pretrained,
                        arch_kwargs=entry_with_defaults("architecture", arch)["arch_kwargs"])
    train(model, recipe, attack_set, None, device=device, workdir=workdir,
          log_csv=log_csv or workdir / "log.csv", input_size=arch["input_size"])
    scores, per_class = {}, {}
    for name, real in (("train", real_train_set), ("test", real_test_set)):
        hits, real_labels = _student_hits(model, real, classes, recipe, arch["input_size"], device)
        scores[f"xi_{name}"] = float(hits.mean())
        scores[f"real_{name}_images"] = len(real_labels)
        per_class.update(per_class_means({f"xi_{name}": hits}, real_labels))
    clear_checkpoint(workdir)
    return {**scores, "attack_images": len(attack_set), "student": arch["model"],
            "epochs": int(recipe["epochs"]), "per_class": per_class}


def _checked_attack_images(images: torch.Tensor | np.ndarray, labels: Sequence[int] | torch.Tensor,
                           classes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """``images`` as uint8 ``N×H×W×3`` numpy and ``labels`` as int64 numpy, after checking that
    every label is an attacked class and every attacked class has images."""
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes: expected distinct labels, got {classes[:10]}")
    images = images.cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if images.dtype != np.uint8 or images.ndim not in (4, 5) or images.shape[-1] != 3:
        raise ValueError(f"images: expected uint8 N×H×W×3 or C×n×H×W×3, got {images.dtype} "
                         f"{images.shape}")
    if images.ndim == 5:
        images = images.reshape(-1, *images.shape[2:])
    labels = np.asarray(torch.as_tensor(labels).reshape(-1).cpu().numpy(), dtype=np.int64)
    unknown = sorted(set(labels.tolist()) - set(classes))
    if unknown:
        raise ValueError(f"labels: {unknown[:10]} are not among the attacked classes")
    if len(labels) != len(images):
        raise ValueError(f"labels: {len(labels)} for {len(images)} images")
    not_attacked = sorted(set(classes) - set(labels.tolist()))
    if not_attacked:
        raise ValueError(f"classes: {not_attacked[:10]} have no attack images")
    return images, labels


def _student_hits(model, real: PackedDataset, classes: list[int], recipe: Mapping,
                  input_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per real image of ``classes`` in ``real``: whether the student (output ``i`` for
    ``classes[i]``) names its class (float64 0/1), and the images' labels."""
    from lsmia.training.trainer import evaluate

    lookup = torch.full((max(real.num_classes, max(classes) + 1),), -1, dtype=torch.int64)
    lookup[torch.tensor(classes)] = torch.arange(len(classes))
    logits, real_labels = evaluate(model, _of_classes(real, classes), device=device,
                                   input_size=input_size,
                                   batch_size=recipe["eval_batch_size"],
                                   precision=recipe["precision"])
    return (logits.argmax(dim=1) == lookup[real_labels]).double(), real_labels


def _write_attack_set(path: Path, images: np.ndarray, labels: np.ndarray, classes: list[int],
                      identities: list[str], student_index: dict) -> Path:
    index = pd.DataFrame({
        "label": np.array([student_index[label] for label in labels.tolist()], dtype=np.int64),
        "identity": [identities[label] if label < len(identities) else str(label)
                     for label in labels.tolist()],
        "split": "train",
        "source": [f"attack:{position}" for position in range(len(labels))],
    })
    return write_packed(path, np.ascontiguousarray(images), index,
                        settings={"kind": "attack images for the knowledge extraction score",
                                  "classes": classes})


def _of_classes(dataset: PackedDataset, classes: list[int]) -> PackedDataset:
    rows = dataset.rows[np.isin(dataset.labels, classes)]
    if len(rows) == 0:
        raise ValueError(f"{dataset.path} (split {dataset.split}): no images of classes "
                         f"{classes[:10]}")
    return PackedDataset(dataset.path, split=dataset.split, rows=rows)
