"""Attack metrics at demo size: real-image embeddings cached once per extractor vs recomputed for
every metric that needs them (δ_eval, δ_face, FID, PRDC).

Synthetic data of one of two shapes (``--shape``): ``demo`` is the demo's (16 classes × 40 real
images at 32 px, 36 train and 4 test, 16 × 4 final images and 16 × 6 candidates, extractors of the
demo's architectures: δ_eval the evaluation model tiny_inception, δ_face tiny_resnext, FID
tiny_inception), ``previous`` the shape this page's earlier figures used (20 classes, 20 × 8 final,
20 × 16 candidates, δ_face tiny_densenet, FID tiny_resnext). The networks are randomly initialised
(timing only; the values mean nothing). Candidates reach the metrics as the metrics job renders
them (uint8 ``N×H×W×3`` → [−1, 1] ``N×3×H×W``, channels-last strides), with the job's one torch
thread unless ``--threads`` says otherwise.

    .venv/bin/python benchmarks/metrics.py [--shape demo] [--threads 1] [--clock cpu] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
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

REAL_PER_CLASS, TEST_PER_CLASS, SIZE, BATCH = 40, 4, 32, 256
SHAPES = {
    "demo": {"classes": 16, "final": 4, "candidates": 6, "attacks": 25,
             "archs": {"eval": "tiny_inception", "face": "tiny_resnext", "fid": "tiny_inception"}},
    "previous": {"classes": 20, "final": 8, "candidates": 16, "attacks": 24,
                 "archs": {"eval": "tiny_inception", "face": "tiny_densenet",
                           "fid": "tiny_resnext"}},
}
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def demo_data(root: Path, shape: dict, seed: int = 0):
    rng = np.random.default_rng(seed)
    classes, final, candidates = shape["classes"], shape["final"], shape["candidates"]
    labels = np.repeat(np.arange(classes), REAL_PER_CLASS)
    split = np.tile(["train"] * (REAL_PER_CLASS - TEST_PER_CLASS) + ["test"] * TEST_PER_CLASS,
                    classes)
    index = pd.DataFrame({"label": labels, "identity": [f"id{i}" for i in labels], "split": split,
                          "source": "synthetic"})
    images = rng.integers(0, 256, size=(len(labels), SIZE, SIZE, 3), dtype=np.uint8)
    dataset = PackedDataset(write_packed(root / "packed", images, index, {"seed": seed}), "train")
    selected = {
        "images": torch.from_numpy(rng.integers(0, 256, (classes, final, SIZE, SIZE, 3), np.uint8)),
        "classes": torch.arange(classes),
        "confidence": torch.rand(classes, final),
    }
    # as candidate_batches renders them: uint8 N×H×W×3, permuted to N×3×H×W
    candidates = to_float(torch.from_numpy(
        rng.integers(0, 256, (classes * candidates, SIZE, SIZE, 3), np.uint8)).permute(0, 3, 1, 2))
    candidate_labels = torch.arange(classes).repeat_interleave(shape["candidates"])
    unselected = [(candidates[start:start + BATCH], candidate_labels[start:start + BATCH])
                  for start in range(0, len(candidates), BATCH)]
    return dataset, selected, unselected


def networks(device: torch.device, shape: dict):
    """The demo's roles: δ_eval's features come from the evaluation model itself (as in the
    metrics job), δ_face and FID/PRDC from two other networks."""
    torch.manual_seed(0)
    extractors = {role: model_penultimate(create_model(arch, shape["classes"]).to(device).eval(),
                                          SIZE, f"{role}-{arch}@random")
                  for role, arch in shape["archs"].items()}
    return extractors, extractors["eval"].network


def timed(function, clock) -> float:
    """Seconds of one call, after one warm-up call."""
    function()
    started = clock()
    function()
    return clock() - started


def run(device: torch.device, shape: dict, repeats: int, clock) -> dict[str, list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        dataset, selected, unselected = demo_data(Path(tmp), shape)
        extractors, evaluation_model = networks(device, shape)

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

        # interleaved, so that a change of load touches all three alike
        build, with_cache, without = [], [], []
        for _ in range(repeats):
            build.append(timed(build_cache, clock))
            with_cache.append(timed(cached, clock))
            without.append(timed(recomputed, clock))
    return {"build": build, "cached": with_cache, "recomputed": without}


def table(seconds: dict[str, list[float]], attacks: int) -> list[str]:
    """Rows of min / median / max; the ``attacks`` rows and the ratio from the medians."""
    build, cached, recomputed = (statistics.median(seconds[key])
                                 for key in ("build", "cached", "recomputed"))
    rows = [f"| {what} | {min(s):.3f} / {statistics.median(s):.3f} / {max(s):.3f} |"
            for what, s in (("build the cache (3 extractors, once per dataset)", seconds["build"]),
                            ("one attack, cached real embeddings", seconds["cached"]),
                            ("one attack, real embeddings recomputed per metric",
                             seconds["recomputed"]))]
    rows += [f"| {attacks} attacks, cached (build + {attacks} × cached), from the medians | "
             f"{build + attacks * cached:.3f} |",
             f"| {attacks} attacks, recomputed ({attacks} × recomputed), from the medians | "
             f"{attacks * recomputed:.3f} |",
             f"| recomputed / cached | {attacks * recomputed / (build + attacks * cached):.2f}× |"]
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--shape", choices=sorted(SHAPES), default="demo")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (the demo's threads.metrics: 1)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall time, or this process's CPU time (steadier on a shared machine)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each, interleaved")
    parser.add_argument("--attacks", type=int, help="attacks sharing one dataset's cache "
                        "(default: the demo's 25, or 24 for the previous shape)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    shape = SHAPES[args.shape]
    seconds = run(torch.device(args.device), shape, args.repeats, CLOCKS[args.clock])
    print(f"`.venv/bin/python {' '.join(sys.argv)}` on {machine()}, load average "
          f"{os.getloadavg()[0]:.1f}\n")
    print(f"Shape {args.shape}: {shape['classes']} classes × {REAL_PER_CLASS} real images "
          f"({SIZE} px), {shape['classes']} × {shape['final']} final and {shape['classes']} × "
          f"{shape['candidates']} candidate images, device {args.device}, {args.threads} torch "
          f"thread(s), {args.clock} seconds, {args.repeats} runs each.\n")
    print("| what | min / median / max s |")
    print("|---|---|")
    print("\n".join(table(seconds, args.attacks or shape["attacks"])))


if __name__ == "__main__":
    main()
