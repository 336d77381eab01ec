"""The three stages of the Plug & Play attack as workflow jobs (one output file each).

Each job registers itself as a stage (``register_stage``) with how its rule's files map to its
keyword arguments; ``run_stage`` runs the stage a rule ``attack_<stage>`` names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from lsmia.attacks import load_generator, optimise_stage, sample_stage, save_grid, select_stage
from lsmia.data.packed import read_manifest
from lsmia.io import atomic_path, torch_save
from lsmia.models import load_model
from lsmia.provenance import provenance
from lsmia.registry import Registry
from lsmia.runtime import resolve_device

log = logging.getLogger("lsmia")


@dataclass(frozen=True)
class AttackStage:
    """A stage's job and ``files(rule)``: its rule's inputs, outputs, params and logs as the
    job's file arguments."""

    job: Callable[..., None]
    files: Callable[[Any], dict]


ATTACK_STAGES: Registry[AttackStage] = Registry("attack stage")


def register_stage(name: str, files: Callable[[Any], dict]):
    """Decorator: register a job as the attack stage ``name`` (rule ``attack_<name>``)."""
    return ATTACK_STAGES.register(name, lambda job: AttackStage(job, files))


def run_stage(rule, **common) -> None:
    """Run the stage of the Snakemake job ``rule`` (``snakemake`` in a script, rule
    ``attack_<stage>``) with its files and the ``common`` arguments (target, attack, device)."""
    stage = ATTACK_STAGES.get(rule.rule.removeprefix("attack_"), f"snakemake rule {rule.rule!r}")
    stage.job(**stage.files(rule), **common)


def attacked_classes(setting, num_classes: int) -> list[int]:
    """``all`` classes, or the first N."""
    if setting == "all":
        return list(range(num_classes))
    if not 1 <= int(setting) <= num_classes:
        raise ValueError(f"attack.classes: {setting} is not between 1 and {num_classes}")
    return list(range(int(setting)))


def _setup(target_path, generator_spec, device):
    device = resolve_device(device)
    target, meta = load_model(target_path, device)
    target.requires_grad_(False)
    generator = load_generator(generator_spec, device)
    log.info("target %s (%s, %s), generator %s on %s", target_path, meta["arch"],
             meta.get("recipe"), generator_spec["kind"], device)
    return device, target, meta, generator


def _save(result: dict, path, attack: dict, meta: dict, stage: str) -> None:
    """``result`` with ``info``: the stage, the target's recipe, the attack settings the job ran
    with (runtime keys included: batch sizes, ``optimise.compile_target``) and provenance."""
    result = dict(result)
    result["info"] = {"stage": stage, "target_recipe": meta.get("recipe"), "settings": attack,
                      "provenance": provenance(seed=attack["seed"])}
    torch_save(result, path)


def check_target_fits_data(target, meta: dict, data_dir) -> None:
    """The target must classify the identities of the dataset it is attacked on."""
    classes = read_manifest(data_dir)["num_classes"]
    if meta["num_classes"] != classes:
        raise ValueError(f"{target}: the model has {meta['num_classes']} classes but "
                         f"{data_dir} has {classes} identities; was it trained on another "
                         "dataset? Retrain it (delete the file) or point to the right one")


@register_stage("sample", lambda rule: {"out": rule.output[0],
                                        "data_dir": Path(rule.input.data).parent})
def sample_job(*, target, attack: dict, out, device: str, data_dir=None) -> None:
    """Stage 1: score the search space, keep the best latents per class (``data_dir``: the
    packed private data, whose identity count the target must have)."""
    device, model, meta, generator = _setup(target, attack["generator"], device)
    if data_dir is not None:
        check_target_fits_data(target, meta, data_dir)
    settings = attack["sample"]
    result = sample_stage(
        generator, model, attacked_classes(attack["classes"], meta["num_classes"]),
        search_space_size=settings["search_space_size"],
        candidates_per_class=settings["candidates_per_class"], psi=settings["psi"],
        cutoff=settings["cutoff"], crop_fraction=settings["crop_fraction"],
        input_size=meta["input_size"], batch_size=settings["batch_size"], seed=attack["seed"],
        device=device, precision=attack["precision"], clamp=settings["clamp"],
        latent_draw=settings["latent_draw"],
    )
    _save(result, out, attack, meta, "sample")


@register_stage("optimise", lambda rule: {
    "sample": rule.input.sample, "out": rule.output.result, "gradients_csv": rule.output.gradients,
    "state": rule.params.state, "log_csv": rule.log.iterations})
def optimise_job(*, target, sample, attack: dict, out, gradients_csv, state, log_csv,
                 device: str) -> None:
    """Stage 2: optimise every candidate against the target; resumable per batch."""
    device, model, meta, generator = _setup(target, attack["generator"], device)
    settings = attack["optimise"]
    sample_out = torch.load(sample, map_location="cpu", weights_only=True)
    result = optimise_stage(
        generator, model, sample_out, iterations=settings["iterations"], lr=settings["lr"],
        betas=tuple(settings["betas"]), crop_scale=tuple(settings["crop_scale"]),
        crop_fraction=attack["sample"]["crop_fraction"], input_size=meta["input_size"],
        batch_size=settings["batch_size"], seed=attack["seed"], device=device, state_path=state,
        log_csv=log_csv, precision=attack["precision"], crop_per=settings["crop_per"],
        compile_target=settings["compile_target"],
    )
    _save(result, out, attack, meta, "optimise")
    write_gradient_log(log_csv, gradients_csv)
    Path(state).unlink(missing_ok=True)


def write_gradient_log(optimise_log, path) -> None:
    """Per-iteration loss, confidence and gradient cosine similarity over all samples."""
    frame = pd.read_csv(optimise_log)
    frame = frame[frame["scope"] == "all"].rename(columns={
        "loss_mean": "loss", "confidence_mean": "confidence",
        "grad_cosine_mean": "grad_cos_mean", "grad_cosine_std": "grad_cos_std",
    })
    columns = ["iteration", "samples", "loss", "confidence", "grad_cos_mean", "grad_cos_std"]
    with atomic_path(path) as tmp:
        frame[columns].to_csv(tmp, index=False)


@register_stage("select", lambda rule: {"optimised": rule.input.optimised,
                                        "out": rule.output.result, "grid": rule.output.grid})
def select_job(*, target, optimised, attack: dict, out, grid, device: str) -> None:
    """Stage 3: keep the latents the target scores highest under random transforms."""
    device, model, meta, generator = _setup(target, attack["generator"], device)
    settings = attack["select"]
    optimise_out = torch.load(optimised, map_location="cpu", weights_only=True)
    result = select_stage(
        generator, model, optimise_out, final_per_class=settings["final_per_class"],
        transforms=settings["transforms"], crop_scale=tuple(settings["crop_scale"]),
        crop_ratio=tuple(settings["crop_ratio"]), crop_fraction=attack["sample"]["crop_fraction"],
        input_size=meta["input_size"], batch_size=settings["batch_size"], seed=attack["seed"],
        device=device, image_size=settings.get("image_size"), precision=attack["precision"],
    )
    _save(result, out, attack, meta, "select")
    save_grid(result["images"], result["classes"], grid)
