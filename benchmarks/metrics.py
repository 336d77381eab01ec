"""Attack metrics at demo size: real-image embeddings cached once per extractor vs recomputed for
every metric that needs them (δ_eval, δ_face, FID, PRDC).

Demo-sized synthetic data: 20 classes × 40 real images at 32 px (36 train, 4 test), 20 × 8 final
attack images and 20 × 16 candidates; the three extractors and the evaluation model are randomly
initialised tiny lsmia networks (timing only; the values mean nothing).

    .venv/bin/python benchmarks/metrics.py [--device cpu] [--repeats 3] [--attacks 24]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from lsmia.data.augment import to_float
from lsmia.data.packed import PackedDataset, write_packed
from lsmia.metrics.attack_metrics import compute_attack_metrics
from lsmia.metrics.embeddings import compute_embeddings, load_cached_embeddings, save_embeddings
from lsmia.metrics.extractors import model_penultimate
from lsmia.models import create_model
from machine import machine

CLASSES, REAL_PER_CLASS, TEST_PER_CLASS, FINAL, CANDIDATES, SIZE = 20, 40, 4, 8, 16, 32
EXTRACTOR_ARCHS = {"eval": "tiny_inception", "face": "tiny_densenet", "fid": "tiny_resnext"}
BATCH = 256


def demo_data(root: Path, seed: int = 0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(CLASSES), REAL_PER_CLASS)
    split = np.tile(["train"] * (REAL_PER_CLASS - TEST_PER_CLASS) + ["test"] * TEST_PER_CLASS,
                    CLASSES)
    index = pd.DataFrame({"label": labels, "identity": [f"id{i}" for i in labels], "split": split,
                          "source": "synthetic"})
    images = rng.integers(0, 256, size=(len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    dataset = PackedDataset(write_packed(root / "packed", images, index, {"seed": seed}), "train")
    selected = {
        "images": torch.from_numpy(rng.integers(0, 256, (CLASSES, FINAL, SIZE, SIZE, 3), np.uint8)),
        "classes": torch.arange(CLASSES),
        "confidence": torch.rand(CLASSES, FINAL),
    }
    candidates = to_float(torch.from_numpy(
        rng.integers(0, 256, (CLASSES * CANDIDATES, 3, SIZE, SIZE), np.uint8)))
    candidate_labels = torch.arange(CLASSES).repeat_interleave(CANDIDATES)
    unselected = [(candidates[start:start + BATCH], candidate_labels[start:start + BATCH])
                  for start in range(0, len(candidates), BATCH)]
    return dataset, selected, unselected


def networks(device: torch.device):
    """The demo's roles: δ_eval's features come from the evaluation model itself (as in the
    metrics job), δ_face and FID/PRDC from two other networks."""
    torch.manual_seed(0)
    extractors = {role: model_penultimate(create_model(arch, CLASSES).to(device).eval(), SIZE,
                                          f"{role}-{arch}@random")
                  for role, arch in EXTRACTOR_ARCHS.items()}
    return extractors, extractors["eval"].network


def timed(function) -> tuple[float, object]:
    started = time.perf_counter()
    result = function()
    return time.perf_counter() - started, result


def run(device: torch.device, repeats: int, attacks: int) -> list[tuple[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        dataset, selected, unselected = demo_data(Path(tmp))
        extractors, evaluation_model = networks(device)

        def metrics(real):
            return compute_attack_metrics(selected, unselected, evaluation_model, SIZE, extractors,
                                          real, prdc_k=3, batch_size=BATCH, device=device)

        def build_cache():
            for role, extractor in extractors.items():
                embeddings = compute_embeddings(extractor, dataset, "train", None, BATCH, device)
                save_embeddings(embeddings, Path(tmp) / f"{role}.pt")

        def cached():
            return metrics({role: load_cached_embeddings(Path(tmp) / f"{role}.pt", extractor.name)
                            for role, extractor in extractors.items()})

        def recomputed():
            # δ_eval, δ_face, FID and PRDC each embed the real images they need themselves.
            per_metric = [("eval", "delta_eval"), ("face", "delta_face"), ("fid", "fid"),
                          ("fid", "prdc")]
            real = {}
            for role, _metric in per_metric:
                real[role] = compute_embeddings(extractors[role], dataset, "train", None, BATCH,
                                                device)
            return metrics(real)

        build = statistics.median(timed(build_cache)[0] for _ in range(repeats))
        with_cache = statistics.median(timed(cached)[0] for _ in range(repeats))
        without = statistics.median(timed(recomputed)[0] for _ in range(repeats))
    return [
        ("build the cache (3 extractors, once per dataset)", build),
        ("one attack, cached real embeddings", with_cache),
        ("one attack, real embeddings recomputed per metric", without),
        (f"{attacks} attacks, cached (build + {attacks} × cached)", build + attacks * with_cache),
        (f"{attacks} attacks, recomputed ({attacks} × recomputed)", attacks * without),
    ]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3, help="median of this many runs")
    parser.add_argument("--attacks", type=int, default=24,
                        help="attacks sharing one dataset's cache")
    args = parser.parse_args()
    rows = run(torch.device(args.device), args.repeats, args.attacks)
    print(f"`.venv/bin/python {' '.join(sys.argv)}` on {machine()}\n")
    print(f"Demo size: {CLASSES} classes × {REAL_PER_CLASS} real images ({SIZE} px), "
          f"{CLASSES} × {FINAL} final and {CLASSES} × {CANDIDATES} candidate images, "
          f"device {args.device}, median of {args.repeats}.\n")
    print("| what | seconds |")
    print("|---|---|")
    for what, seconds in rows:
        print(f"| {what} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
