"""PPA stage 2: optimise each candidate latent towards its class with the Poincaré loss.

Samples are optimised in batches (across classes, class-major order). The finished batches go
atomically to a state file at most every ``checkpoint_seconds`` (each write holds every finished
batch, so writing after every batch would cost O(batches²) at the paper's size), at the end, and on
SIGTERM; a rerun with the same inputs resumes after the last saved batch and gives the same result as
an uninterrupted run (bit-identical on CPU). SIGTERM abandons the running batch, saves the finished
ones and raises ``Preempted``; a SIGKILL loses at most ``checkpoint_seconds`` of work.

The final confidence reuses nothing of the last iteration's forward pass: that pass saw w before the
last Adam step (through a random crop), so the final w is synthesised once more, and its view and
the view's mirror go through the target as one batch. The input fingerprint (which hashes the
target's weights) is computed once per call, not per batch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Iterator

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from lsmia.attacks.generators import Generator
from lsmia.attacks.poincare import poincare_loss
from lsmia.attacks.views import flip_averaged_softmax, prepare_target, target_logits, target_view
from lsmia.data import augment
from lsmia.io import atomic_path
from lsmia.resumable import Preempted, hash_tensor, load_state, save_state, sigterm_flag

log = logging.getLogger(__name__)

TRACES = ("loss_trace", "confidence_trace", "grad_cosine_trace")
CROP_PER = ("batch", "image")


def optimise_stage(generator: Generator, target: nn.Module, sample_out: dict, *, iterations: int,
                   lr: float, betas: tuple[float, float], crop_scale: tuple[float, float],
                   crop_fraction: float, input_size: int, batch_size: int, seed: int,
                   device: torch.device, state_path: str | Path, log_csv: str | Path,
                   crop_ratio: tuple[float, float] = (1.0, 1.0), precision: str = "fp32",
                   crop_per: str = "batch", checkpoint_seconds: float = 60.0,
                   compile_target: bool = False) -> dict[str, torch.Tensor]:
    """Adam (``lr``, ``betas``) on one ``w_dim`` latent per sample, broadcast to all style layers.

    Starts from ``sample_out["w"]`` (``C×k×num_ws×w_dim``: its first layer, the truncated one; or
    ``C×k×w_dim``). Each step: synthesise → centre crop ``crop_fraction`` → resize ``input_size`` →
    random resized crop (``crop_scale``, ``crop_ratio``; boxes from a generator seeded by ``seed``
    and the batch number; one box per step for the whole batch with ``crop_per="batch"``, as the
    authors' transform of the 4-D batch, or one per image with ``"image"``) → target → Poincaré
    loss towards the sample's class. ``precision``: see ``lsmia.runtime.autocast``.
    ``compile_target``: :func:`compiled_target` (speed only: outside the resume fingerprint, a
    state saved with either setting resumes with the other; equal to eager up to float rounding).

    Returns (CPU tensors) ``w`` ``C×k×w_dim``, ``classes``, ``confidence`` ``C×k`` (final target
    softmax for the class, averaged with the mirror image, no random crop) and per-sample traces
    ``loss_trace``, ``confidence_trace`` (before each step) and ``grad_cosine_trace`` (cosine
    between the gradients w.r.t. w of consecutive steps; NaN at step 0), each ``C×k×iterations``.
    ``log_csv`` gets per-step means per batch (``scope`` = ``batch<i>``) and over all samples
    (``scope`` = ``all``); it is rewritten with the state file (see the module docstring; 0
    ``checkpoint_seconds`` saves after every batch).
    """
    settings = dict(
        iterations=iterations, lr=lr, betas=list(betas), crop_scale=list(crop_scale),
        crop_ratio=list(crop_ratio), crop_fraction=crop_fraction, input_size=input_size,
        batch_size=batch_size, seed=seed, precision=precision, crop_per=crop_per,
    )
    _check_settings(settings)
    target = prepare_target(target, device)
    classes = torch.as_tensor(sample_out["classes"], dtype=torch.int64)
    start_w = _start_latents(sample_out["w"], len(classes), generator.w_dim)
    num_classes, per_class = start_w.shape[:2]
    flat_w = start_w.reshape(-1, generator.w_dim)
    flat_targets = classes.repeat_interleave(per_class)
    state = _BatchState(Path(state_path), Path(log_csv),
                        _fingerprint(settings, flat_w, flat_targets, generator, target),
                        checkpoint_seconds)
    target = compiled_target(target) if compile_target else target  # after the fingerprint
    starts = list(range(0, len(flat_w), batch_size))
    if state.finished:
        log.info("optimise: resuming after %d of %d batches from %s",
                 len(state.finished), len(starts), state_path)
    with sigterm_flag("stopping after saving finished batches") as stop, state.saved_on_exit():
        for number in tqdm(range(len(state.finished), len(starts)), desc="optimise",
                           file=sys.stderr, mininterval=10, initial=len(state.finished),
                           total=len(starts)):
            rows = slice(starts[number], starts[number] + batch_size)
            state.add(_optimise_batch(
                generator, target, flat_w[rows], flat_targets[rows], settings,
                batch_seed=seed * 1_000_003 + number, device=device, stop=stop.is_set,
                state_note=f"{len(state.finished)} of {len(starts)} batches saved in {state_path}",
            ))
    return _stage_result(state.finished, classes, (num_classes, per_class), iterations)


def _stage_result(batches: list[dict], classes: torch.Tensor, shape: tuple[int, int],
                  iterations: int) -> dict[str, torch.Tensor]:
    """The finished batches' latents, confidences and traces, back in ``C×k`` order."""
    merged = {key: torch.cat([batch[key] for batch in batches]) for key in batches[0]}
    return {
        "w": merged["w"].reshape(*shape, -1),
        "classes": classes,
        "confidence": merged["confidence"].reshape(shape),
        **{key: merged[key].reshape(*shape, iterations) for key in TRACES},
    }


def compiled_target(target: nn.Module) -> nn.Module:
    """``torch.compile`` of the frozen target with static shapes (the generator stays eager).

    The target sees at most four inputs in a call: the batch, with gradients to the images, a
    smaller last batch, and twice each under ``no_grad`` for the final pass over view and mirror.
    Static shapes compile each once (every batch but the last has the first shape) and give the
    fastest kernels; marking the batch dimension dynamic would save at most two compilations."""
    return torch.compile(target, dynamic=False)


def _check_settings(settings: dict) -> None:
    if settings["crop_per"] not in CROP_PER:
        raise ValueError(f"optimise_stage: crop_per {settings['crop_per']!r} is not one of "
                         f"{list(CROP_PER)}")
    if settings["iterations"] < 1 or settings["batch_size"] < 1:
        raise ValueError(f"optimise_stage: iterations ({settings['iterations']}) and batch_size "
                         f"({settings['batch_size']}) must be positive")


def _start_latents(w: torch.Tensor, num_classes: int, w_dim: int) -> torch.Tensor:
    """``C×k×w_dim`` float start latents from stage 1's ``C×k×[num_ws×]w_dim`` (the first layer:
    the truncated one)."""
    start_w = w.float()
    if start_w.dim() == 4:
        start_w = start_w[:, :, 0]
    if start_w.dim() != 3 or (start_w.shape[0], start_w.shape[2]) != (num_classes, w_dim):
        raise ValueError(
            f"optimise_stage: sample_out['w'] must be C×k×[num_ws×]w_dim with C = {num_classes} "
            f"and w_dim = {w_dim}, got {tuple(w.shape)}"
        )
    return start_w


class _BatchState:
    """The finished batches and their state file (with the trace CSV beside it), saved at most
    every ``checkpoint_seconds``, when the loop ends and when it is preempted."""

    def __init__(self, path: Path, log_csv: Path, fingerprint: str, checkpoint_seconds: float):
        self.path, self.log_csv, self.fingerprint = path, log_csv, fingerprint
        self.checkpoint_seconds = checkpoint_seconds
        state = load_state(path, fingerprint, what="optimisation state")
        self.finished: list[dict] = state["batches"] if state else []
        self.saved, self.last_save = len(self.finished), time.monotonic()

    def add(self, batch: dict) -> None:
        self.finished.append(batch)
        if time.monotonic() - self.last_save >= self.checkpoint_seconds:
            self.save()

    def save(self) -> None:
        if len(self.finished) > self.saved:
            save_state(self.path, self.fingerprint, {"batches": self.finished})
            write_trace_csv(self.log_csv, self.finished)
        self.saved, self.last_save = len(self.finished), time.monotonic()

    @contextlib.contextmanager
    def saved_on_exit(self) -> Iterator[None]:
        """Save what is unsaved when the block ends or is preempted (not on other errors); a
        complete state that was reused only gets its trace CSV rewritten."""
        try:
            yield
        except Preempted:
            self.save()
            raise
        if len(self.finished) > self.saved:
            self.save()
        else:
            write_trace_csv(self.log_csv, self.finished)


def _optimise_batch(generator, target, start_w, targets, settings, *, batch_seed, device, stop,
                    state_note) -> dict[str, torch.Tensor]:
    iterations, input_size = settings["iterations"], settings["input_size"]
    w = start_w.clone().to(device).requires_grad_(True)
    largest_target = int(targets.max())
    targets = targets.to(device)
    optimiser = torch.optim.Adam([w], lr=settings["lr"], betas=tuple(settings["betas"]))
    # Every step's crop boxes up front: one host-to-device copy per batch, none inside the loop.
    crop_generator = torch.Generator().manual_seed(batch_seed)
    per_step = 1 if settings["crop_per"] == "batch" else len(w)
    boxes = augment.crop_boxes(
        iterations * per_step, input_size, input_size, settings["crop_scale"],
        settings["crop_ratio"], crop_generator,
    ).reshape(iterations, per_step, 4).expand(-1, len(w), -1).to(device)
    traces = {key: torch.full((iterations, len(w)), float("nan"), device=device) for key in TRACES}
    previous_grad = None
    for step in range(iterations):
        if stop():
            raise Preempted(f"optimise_stage: SIGTERM received; {state_note}; rerun to resume")
        view = target_view(generator.synthesise(w), settings["crop_fraction"], input_size)
        logits = target_logits(target, augment.crop_and_resize(view, boxes[step], input_size),
                               settings["precision"])
        if largest_target >= logits.shape[1]:
            raise ValueError(f"optimise_stage: class {largest_target} is beyond the target's "
                             f"{logits.shape[1]} outputs")
        losses = poincare_loss(logits, targets, reduction="none")
        optimiser.zero_grad(set_to_none=True)
        losses.mean().backward()
        grad = w.grad.detach().clone()
        if previous_grad is not None:
            traces["grad_cosine_trace"][step] = F.cosine_similarity(grad, previous_grad, dim=1)
        previous_grad = grad
        traces["loss_trace"][step] = losses.detach()
        traces["confidence_trace"][step] = logits.detach().softmax(dim=1).gather(
            1, targets[:, None])[:, 0]
        optimiser.step()
    _check_finite(traces["loss_trace"], targets)
    with torch.no_grad():
        view = target_view(generator.synthesise(w), settings["crop_fraction"], input_size)
        confidence = flip_averaged_softmax(target, view, settings["precision"]).gather(1, targets[:, None])[:, 0]
    result = {"w": w.detach(), "confidence": confidence,
              **{key: trace.T for key, trace in traces.items()}}
    return {key: value.cpu() for key, value in result.items()}


def _check_finite(loss_trace: torch.Tensor, targets: torch.Tensor) -> None:
    """Stop on the first non-finite loss (checked once per batch: no host sync per step)."""
    bad = ~torch.isfinite(loss_trace)
    if bad.any():
        step, sample = bad.nonzero()[0].tolist()
        raise FloatingPointError(
            f"optimise_stage: the Poincaré loss of class {int(targets[sample])} is "
            f"{loss_trace[step, sample].item()} at iteration {step}; the target model gives "
            f"non-finite logits for this latent (check the model file)")


def write_trace_csv(path: str | Path, batches: list[dict]) -> None:
    """Per-step mean loss, mean confidence and mean/std of the gradient cosine over samples, for
    each batch (``scope`` ``batch<i>``) and over all samples (``scope`` ``all``)."""
    frames = [_trace_frame(f"batch{number}", batch) for number, batch in enumerate(batches)]
    merged = {key: torch.cat([batch[key] for batch in batches]) for key in TRACES}
    frames.append(_trace_frame("all", merged))
    with atomic_path(path) as tmp:
        pd.concat(frames, ignore_index=True).to_csv(tmp, index=False)


def _trace_frame(scope: str, traces: dict) -> pd.DataFrame:
    cosine = traces["grad_cosine_trace"]
    return pd.DataFrame({
        "scope": scope,
        "iteration": range(cosine.shape[1]),
        "samples": cosine.shape[0],
        "loss_mean": traces["loss_trace"].mean(dim=0).numpy(),
        "confidence_mean": traces["confidence_trace"].mean(dim=0).numpy(),
        "grad_cosine_mean": cosine.mean(dim=0).numpy(),
        "grad_cosine_std": cosine.std(dim=0, correction=0).numpy(),
    })


def _fingerprint(settings, flat_w, flat_targets, generator, target) -> str:
    """Digest of everything that decides the result: a state file from other inputs is ignored."""
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    digest.update(f"{type(generator).__name__}/{generator.w_dim}/{generator.num_ws}/"
                  f"{generator.image_size}".encode())
    for tensor in (flat_w, flat_targets, *target.state_dict().values()):
        hash_tensor(digest, tensor)
    return digest.hexdigest()
