"""Attack metrics as workflow jobs: real-image embeddings (cached), metrics of one attack, ξ."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from lsmia.attacks import load_generator
from lsmia.data.packed import PackedDataset
from lsmia.io import save_json
from lsmia.metrics.attack_metrics import candidate_batches, compute_attack_metrics
from lsmia.metrics.embeddings import compute_embeddings, load_cached_embeddings, save_embeddings
from lsmia.metrics.extractors import load_extractor
from lsmia.metrics.knowledge import knowledge_extraction_score
from lsmia.metrics.leakage import identity_leakage
from lsmia.models import load_model
from lsmia.provenance import provenance
from lsmia.runtime import resolve_device

log = logging.getLogger("lsmia")


def embeddings_job(*, data_dir, extractor: dict, out, batch_size: int, device: str) -> None:
    """Features of every real training image under one extractor, computed once per dataset."""
    device = resolve_device(device)
    network = load_extractor(extractor, device)
    dataset = PackedDataset(data_dir)
    cache = compute_embeddings(network, dataset, "train", None, batch_size, device)
    log.info("%d embeddings of %s by %s", len(cache["labels"]), data_dir, network.name)
    save_embeddings(cache, out)


def metrics_job(*, selected, optimised, data_dir, evaluation_model, extractors: dict,
                embeddings: dict, attack: dict, wildcards, prdc_k: int, batch_size: int,
                synthetic: bool, device: str, out, private_codes=None) -> dict:
    """Every metric of one attack; the file is written only if all of them could be computed."""
    device = resolve_device(device)
    dataset = PackedDataset(data_dir)
    judge, judge_meta = load_model(evaluation_model, device)
    # a model extractor of the evaluation model's file reuses the judge (loaded once)
    loaded = {Path(evaluation_model): (judge, judge_meta)}
    networks = {role: load_extractor(spec, device, loaded) for role, spec in extractors.items()}
    caches = {role: load_cached_embeddings(embeddings[role], networks[role].name, dataset)
              for role in networks}
    chosen = torch.load(selected, map_location="cpu", weights_only=True)
    candidates = torch.load(optimised, map_location="cpu", weights_only=True)
    generator = load_generator(attack["generator"], device)
    unselected = candidate_batches(
        generator, candidates, crop_fraction=attack["sample"]["crop_fraction"],
        image_size=chosen["images"].shape[2], batch_size=batch_size, device=device,
    )
    metrics = compute_attack_metrics(chosen, unselected, judge, judge_meta["input_size"], networks,
                                     caches, prdc_k=prdc_k, batch_size=batch_size, device=device)
    metrics["per_class"]["grad_cosine"] = class_gradient_cosine(candidates,
                                                                metrics["per_class"]["classes"])
    if private_codes is not None:
        codes = np.load(private_codes)
        identity_part = chosen["w"].reshape(*chosen["w"].shape[:2], -1)[..., : codes.shape[1]]
        metrics.update(identity_leakage(identity_part, chosen["classes"], codes))
    names = metrics.pop("extractors")
    record = {
        "dataset": wildcards.dataset,
        "architecture": wildcards.arch,
        "recipes": {"sample": wildcards.rs, "optimise": wildcards.ro, "select": wildcards.rsel},
        "metrics": metrics,
        "extractors": names,
        "synthetic": synthetic,
        "seed": attack["seed"],
        "evaluation_model_accuracy": judge_meta.get("test_accuracy"),
        "provenance": provenance(seed=attack["seed"]),
    }
    save_json(record, out)
    return record


def class_gradient_cosine(optimised: dict, classes: list[int]) -> list[float]:
    """Per class of ``classes``: the mean cosine of consecutive attack gradients over its
    candidates and iterations (``grad_cosine_trace`` ``C×k×T``; step 0 has none)."""
    trace = optimised["grad_cosine_trace"].double()
    row_of = {int(label): row for row, label in enumerate(optimised["classes"])}
    return [float(trace[row_of[label]].nanmean()) for label in classes]


def knowledge_job(*, selected, data_dir, arch: dict, recipe: dict, pretrained, wildcards,
                  device: str, workdir, log_csv, out) -> dict:
    """ξ_train / ξ_test: a fresh student trained only on the final attack images."""
    device = resolve_device(device)
    chosen = torch.load(selected, map_location="cpu", weights_only=True)
    classes = chosen["classes"].tolist()
    labels = torch.as_tensor(classes).repeat_interleave(chosen["images"].shape[1])
    scores = knowledge_extraction_score(
        chosen["images"], labels, PackedDataset(data_dir, split="train"),
        PackedDataset(data_dir, split="test"), classes, recipe, arch=arch, device=device,
        workdir=workdir, pretrained=pretrained or None, log_csv=log_csv,
    )
    record = {"dataset": wildcards.dataset, "architecture": wildcards.arch,
              "recipe": wildcards.recipe, **scores, "provenance": provenance(seed=recipe["seed"])}
    save_json(record, out)
    return record
