"""Build the paper's artefacts from the collected metrics files.

Tables, the claims check and the gradient figure read CSV/JSON only and never import torch (a job's
start-up is most of its time); the embedding and sample-grid figures import it when they run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from lsmia.io import load_json
from lsmia.paper import figures
from lsmia.paper.claims import evaluate_claims, write_claims
from lsmia.paper.collect import collect_rows
from lsmia.plan.artefacts import load_function
from lsmia.plan.experiment import build_plan


def table_artefact(name: str, config: dict, table_stem: Path, figure_stem: Path | None = None):
    """A table artefact of the plan (and its figure, where its registry entry names one)."""
    artefact = build_plan(config).artefact(name)
    table = load_function(artefact.kind.builder)(collect_rows(artefact.rows()), artefact.spec)
    table.write(table_stem)
    if artefact.kind.figure:
        load_function(artefact.kind.figure)(table.frame, figure_stem)


def _alpha(model_metrics: str | Path) -> float:
    return float(load_json(model_metrics)["alpha"])


def embeddings_artefact(spec: dict, model_paths: Sequence[str], data_dir: Path, out_stem: Path,
                        device: str) -> None:
    """Penultimate features of three classes per α on their template plane."""
    from lsmia.data.packed import PackedDataset
    from lsmia.models import load_model
    from lsmia.paper.embeddings import class_features
    from lsmia.runtime import resolve_device

    device = resolve_device(device)
    dataset = PackedDataset(data_dir, split="test")
    panels = {}
    for path in model_paths:
        model, meta = load_model(path, device)
        alpha = float(meta["resolved_recipe"]["alpha"])
        panels[alpha] = class_features(model, dataset, spec["classes"], meta["input_size"], device)
    names = [dataset.identities[c] for c in spec["classes"]]
    figures.embeddings_figure(panels, spec["classes"], out_stem, class_names=names)


def gradient_artefact(model_metrics: Sequence[str], logs: Sequence[str], out_stem: Path) -> None:
    """Gradient cosine similarity per iteration, one line per α (bands over seeds)."""
    curves: dict[float, list] = {}
    for metrics, log in zip(model_metrics, logs):  # seed replicates share their α
        curves.setdefault(_alpha(metrics), []).append(figures.read_gradient_log(log))
    figures.gradient_similarity_figure(curves, out_stem)


def sample_grid_artefact(spec: dict, model_metrics: Sequence[str], selected: Sequence[str],
                         data_dir: Path, out_stem: Path) -> None:
    """Final attack images of the first identities per α, next to real training images."""
    import torch

    from lsmia.data.packed import PackedDataset

    dataset = PackedDataset(data_dir, split="train")
    count, classes = spec["images"], range(spec["classes"])
    real = {}
    for label in classes:
        rows = np.flatnonzero(dataset.labels == label)[:count]
        images, _ = dataset.batch(rows)
        real[dataset.identities[label]] = list(images.permute(0, 2, 3, 1).numpy())
    attacks = {}
    for metrics, path in zip(model_metrics, selected):
        result = torch.load(path, map_location="cpu", weights_only=True)  # images: C×n×H×W×3
        row_of = {int(label): row for row, label in enumerate(result["classes"])}
        missing = [label for label in classes if label not in row_of]
        if missing:
            raise ValueError(f"{path}: the attack has no images for classes {missing}; "
                             "attack them or lower artefacts.sample_grid.classes")
        attacks[_alpha(metrics)] = {
            dataset.identities[label]: list(result["images"][row_of[label], :count].numpy())
            for label in classes
        }
    figures.sample_grid_figure(real, attacks, out_stem, images_per_group=count)


def claims_artefact(config: dict, out_md: Path, out_csv: Path) -> pd.DataFrame:
    """Evaluate the paper's claims on the rows of every artefact the claims read."""
    claims = evaluate_claims(collect_rows(build_plan(config).claim_rows()), config["artefacts"])
    write_claims(claims, out_md, out_csv)
    return claims
