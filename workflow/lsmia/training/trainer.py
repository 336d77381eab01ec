"""Train a classifier on a packed dataset with (negative) label smoothing: resumable and seeded.

``train`` runs a resolved recipe (``lsmia.training.recipe``). After every epoch it writes
``<workdir>/checkpoint.pt`` atomically: model, optimiser, LR scheduler, the one ``torch.Generator``
that drives shuffling and augmentation, the global torch RNG states (dropout, MID's sampling) and
the per-epoch rows of the CSV log. A rerun with the same recipe, model and data resumes from it; on
CPU it ends with weights bit-identical to an uninterrupted run. A checkpoint made for another
recipe, architecture or training set is ignored (with a warning) and training starts over.

SIGTERM (e.g. a cluster pre-empting the job) is caught: training stops at the next batch boundary,
keeps the last epoch's checkpoint (work since then is redone on resume) and raises ``Preempted``,
which ``lsmia.jobkit`` turns into exit code 75 (EX_TEMPFAIL; see ``lsmia.resumable``). A non-finite loss
raises ``FloatingPointError`` naming epoch and batch; the caller then writes no model.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import hashlib
import json
import logging
import math
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn
from tqdm import tqdm

from lsmia.config import recipe_without_runtime_settings
from lsmia.data.augment import TrainAugment, eval_transform
from lsmia.data.packed import PackedDataset, iterate_batches
from lsmia.data.splits import limit_training_set
from lsmia.io import atomic_path
from lsmia.metrics.per_class import per_class_means
from lsmia.resumable import Preempted, hash_tensor, load_state, save_state, sigterm_flag
from lsmia.runtime import autocast, seed_everything

from .calibration import expected_calibration_error
from .losses import label_smoothing_loss
from .recipe import build_lr_scheduler, build_optimizer, check_recipe, lr_milestones
from .schedules import alpha_at

log = logging.getLogger("lsmia.training")

CHECKPOINT_FILE = "checkpoint.pt"
CHECKPOINT_HEADER = {"format": "lsmia-train-checkpoint", "version": 1}
CSV_COLUMNS = ("epoch", "loss", "alpha_t", "lr", "train_acc", "test_acc", "seconds")
ECE_BINS = 15
STEP_OPTIONS = ("precision", "aux_loss_weight")  # recipe keys that ``training_step`` takes


def train(model: nn.Module, recipe: Mapping, train_set: PackedDataset,
          test_set: PackedDataset | None, *, device: torch.device | str,
          workdir: str | os.PathLike, log_csv: str | os.PathLike, input_size: int,
          progress: bool = True) -> dict:
    """Train ``model`` in place for ``recipe["epochs"]`` epochs and return final metrics.

    ``train_set`` is limited to ``recipe["training_set_size"]`` images (first N of the seed-42
    permutation). Seed the global RNG with ``recipe["seed"]`` before creating ``model`` so the
    initialisation is reproducible too. Models with ``forward_with_regulariser(x, y) -> (logits,
    extra_loss)`` (defences) are trained through it, with loss = label-smoothing loss + extra_loss.

    Returns ``test_accuracy``, ``test_ece`` (15 bins; both None without a test set),
    ``test_per_class`` (``classes`` and each class's ``test_accuracy``; only with a test set),
    ``train_images``, ``test_images``, ``epochs``, ``train_loss`` and ``train_accuracy`` (both of
    the last epoch).
    """
    recipe = check_recipe(recipe)
    device = torch.device(device)
    train_set = _limited(train_set, recipe["training_set_size"])
    generator = seed_everything(recipe["seed"])
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model.parameters(), recipe["optimizer"])
    scheduler = build_lr_scheduler(optimizer, recipe["lr_schedule"], recipe["epochs"])
    checkpoint = (Path(workdir) / CHECKPOINT_FILE,
                  _fingerprint(model, recipe, train_set, input_size))
    state = (model, optimizer, scheduler, generator)
    rows = _resume(*checkpoint, *state, device)
    augment = train_augment(recipe["augment"], input_size)
    epochs, milestones = recipe["epochs"], lr_milestones(recipe)
    evaluate_test = functools.partial(evaluate, model, device=device, input_size=input_size,
                                      batch_size=recipe["eval_batch_size"],
                                      precision=recipe["precision"])
    last_eval = None
    with sigterm_flag("stopping at the next batch boundary") as stop:
        for epoch in range(len(rows), epochs):
            started = time.perf_counter()
            alpha_t = alpha_at(recipe["alpha_schedule"], recipe["alpha"], epoch, epochs, milestones)
            lr = optimizer.param_groups[0]["lr"]
            loss, accuracy = _train_epoch(model, optimizer, train_set, augment, generator, alpha_t,
                                          recipe["batch_size"], device, epoch, epochs, stop,
                                          progress, {key: recipe[key] for key in STEP_OPTIONS})
            scheduler.step()
            last_eval = evaluate_test(test_set) if test_set is not None else None
            rows.append({"epoch": epoch, "loss": loss, "alpha_t": alpha_t, "lr": lr,
                         "train_acc": accuracy,
                         "test_acc": None if last_eval is None else _accuracy(*last_eval),
                         "seconds": round(time.perf_counter() - started, 3)})
            _save_checkpoint(*checkpoint, *state, rows, device)
            write_log(log_csv, rows)
            log.info("epoch %d/%d: loss %.4f, alpha_t %.4g, lr %.3g, train acc %.4f, test acc %s",
                     epoch + 1, epochs, loss, alpha_t, lr, accuracy, rows[-1]["test_acc"])
            if stop.is_set():
                raise Preempted(f"SIGTERM: stopped after epoch {epoch}; checkpoint in {workdir}")
    write_log(log_csv, rows)
    if test_set is not None and last_eval is None:
        last_eval = evaluate_test(test_set)
    return _final_metrics(rows, last_eval, len(train_set),
                          len(test_set) if test_set is not None else 0, epochs)


def _final_metrics(rows: list[dict], last_eval, train_images: int, test_images: int,
                   epochs: int) -> dict:
    """``train``'s return value from the epoch rows and the last test evaluation (or ``None``)."""
    metrics = {"test_accuracy": None, "test_ece": None, "train_images": train_images,
               "test_images": test_images, "epochs": epochs,
               "train_loss": rows[-1]["loss"] if rows else None,
               "train_accuracy": rows[-1]["train_acc"] if rows else None}
    if last_eval is not None:
        logits, labels = last_eval
        metrics["test_accuracy"] = _accuracy(logits, labels)
        metrics["test_ece"] = expected_calibration_error(logits.softmax(dim=1), labels, ECE_BINS)
        correct = (logits.argmax(dim=1) == labels).double()
        metrics["test_per_class"] = per_class_means({"test_accuracy": correct}, labels)
    return metrics


def _train_epoch(model, optimizer, train_set, augment, generator, alpha_t, batch_size, device,
                 epoch, epochs, stop, progress, step_options) -> tuple[float, float]:
    """One pass over ``train_set``; returns the mean loss and accuracy on the augmented batches.
    ``step_options`` are the recipe's keyword arguments of ``training_step``."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    batches = iterate_batches(train_set, batch_size, shuffle=True, generator=generator,
                              device=device)
    bar = tqdm(batches, total=math.ceil(len(train_set) / batch_size), file=sys.stderr,
               desc=f"epoch {epoch + 1}/{epochs}", disable=not progress, mininterval=5, leave=False)
    with contextlib.closing(bar):
        for batch, (images, labels) in enumerate(bar):
            if stop.is_set():
                raise Preempted(f"SIGTERM: stopped in epoch {epoch} before batch {batch}; "
                                f"resuming repeats this epoch")
            value, hits = training_step(model, optimizer, images, labels, augment, generator,
                                        alpha_t, where=f"epoch {epoch}, batch {batch}",
                                        **step_options)
            total_loss += value * len(labels)
            correct += hits
            seen += len(labels)
    return total_loss / seen, correct / seen


def train_augment(augment: Mapping, input_size: int) -> TrainAugment:
    """The recipe's augmentation (``resize`` null: the input size), cropping to ``input_size``."""
    return TrainAugment(resize=augment["resize"] or input_size, crop_scale=augment["crop_scale"],
                        crop_ratio=augment["crop_ratio"], jitter=augment["jitter"],
                        flip=augment["flip"], out_size=input_size)


def training_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
                  labels: torch.Tensor, augment: TrainAugment, generator: torch.Generator,
                  alpha_t: float, where: str = "a training step",
                  precision: str = "fp32", aux_loss_weight: float = 1.0) -> tuple[float, int]:
    """Augment, forward (through ``forward_with_regulariser`` when the model has it),
    label-smoothing loss, backward and optimiser step on one batch; returns the loss and the
    number of correct predictions. A model that returns ``InceptionOutputs`` (Inception-v3 with its
    auxiliary head) adds ``aux_loss_weight`` × the same loss of the auxiliary logits (the authors:
    weight 1). Channels-last memory on CUDA, bf16 autocast there only with ``precision="bf16"``
    (the authors train in fp32). Raises
    ``FloatingPointError`` (naming ``where``) before the update if the loss is not finite."""
    device = images.device
    images = augment(images, generator)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    with autocast(device, precision):
        if callable(getattr(model, "forward_with_regulariser", None)):
            logits, extra = model.forward_with_regulariser(images, labels)
        else:
            logits, extra = model(images), None
    auxiliary = None
    if isinstance(logits, tuple) and hasattr(logits, "aux_logits"):  # InceptionOutputs
        logits, auxiliary = logits
    loss = label_smoothing_loss(logits, labels, alpha_t)
    if auxiliary is not None:
        loss = loss + aux_loss_weight * label_smoothing_loss(auxiliary, labels, alpha_t)
    if extra is not None:
        loss = loss + extra.float()
    value = loss.item()
    if not math.isfinite(value):
        raise FloatingPointError(f"loss is {value} in {where} (alpha_t {alpha_t}); "
                                 "training stopped")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return value, int((logits.argmax(dim=1) == labels).sum())


@torch.no_grad()
def evaluate(model: nn.Module, dataset: PackedDataset, *, device: torch.device | str,
             input_size: int, batch_size: int, precision: str = "fp32"
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 logits and int64 labels (on CPU) of every image of ``dataset``, in order,
    resized to ``input_size`` without augmentation, with the model in eval mode (autocast as
    ``precision`` asks, see ``lsmia.runtime.autocast``)."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    outputs, targets = [], []
    try:
        for images, labels in iterate_batches(dataset, batch_size, shuffle=False, device=device):
            images = eval_transform(images, input_size)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with autocast(device, precision):
                outputs.append(model(images).float().cpu())
            targets.append(labels.cpu())
    finally:
        model.train(was_training)
    if not outputs:
        raise ValueError(f"evaluate: dataset {getattr(dataset, 'path', dataset)} is empty")
    return torch.cat(outputs), torch.cat(targets)


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(dim=1) == labels).double().mean())


def _limited(train_set: PackedDataset, size: int | None) -> PackedDataset:
    if size is None:
        return train_set
    rows = limit_training_set(train_set.rows, size)
    return PackedDataset(train_set.path, split=train_set.split, rows=rows)


def _fingerprint(model: nn.Module, recipe: dict, train_set: PackedDataset, input_size: int) -> str:
    """What a checkpoint must have been made for: the resolved recipe, the starting weights and
    buffers (values, so a changed pretrained file or seed starts over), the data (the manifest's
    hashes, which every ``PackedDataset`` verifies, and the rows) and the input size."""
    digest = hashlib.sha256()
    settings = recipe_without_runtime_settings(recipe)  # eval batch size: speed, not results
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    digest.update(type(model).__name__.encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tuple(tensor.shape)}:{tensor.dtype};".encode())
        hash_tensor(digest, tensor)
    digest.update(json.dumps(train_set.manifest["sha256"], sort_keys=True).encode())
    digest.update(train_set.rows.tobytes())
    digest.update(str(input_size).encode())
    return digest.hexdigest()


def _resume(path: Path, fingerprint: str, model, optimizer, scheduler, generator,
            device: torch.device) -> list[dict]:
    """Load the checkpoint made for ``fingerprint`` into the training objects and the RNGs; the
    per-epoch rows it holds (none without such a checkpoint)."""
    checkpoint = load_state(path, fingerprint, what="training checkpoint", header=CHECKPOINT_HEADER)
    if checkpoint is None:
        return []
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    scheduler.load_state_dict(checkpoint["scheduler"])
    generator.set_state(checkpoint["generator"])
    torch.set_rng_state(checkpoint["torch_rng"])
    if device.type == "cuda" and checkpoint["cuda_rng"] is not None:
        torch.cuda.set_rng_state(checkpoint["cuda_rng"], device)
    rows = list(checkpoint["rows"])
    log.info("resuming from %s after epoch %d", path, len(rows) - 1)
    return rows


def _save_checkpoint(path: Path, fingerprint: str, model, optimizer, scheduler, generator, rows,
                     device: torch.device) -> None:
    save_state(path, fingerprint, {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        "rows": rows,
    }, header=CHECKPOINT_HEADER)


def write_log(path: str | os.PathLike, rows: list[dict]) -> None:
    """The per-epoch CSV log (columns ``CSV_COLUMNS``), rewritten atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def clear_checkpoint(workdir: str | os.PathLike) -> None:
    """Remove the training checkpoint once the final model is saved."""
    (Path(workdir) / CHECKPOINT_FILE).unlink(missing_ok=True)
