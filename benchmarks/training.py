"""Training throughput (images/s) of the trainer's step: augment, forward, loss, backward, Adam.

Rows: the demo target (``tiny_resnet``, 32 px, batch 64), one full demo epoch through
``lsmia.training.train`` (832 images, test set and checkpoint included), and the paper's target
(timm ``resnet152``, random init, 224 px; batch 8 on CPU, 64 on CUDA). Every row runs on CPU, and
again on CUDA when present (channels-last, fp32: the recipes' default precision).

    .venv/bin/python benchmarks/training.py [--steps 5] [--threads 2] [--skip-large]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from lsmia.data.packed import PackedDataset, write_packed
from lsmia.models import create_model
from lsmia.training import train
from lsmia.training.recipe import build_optimizer, check_recipe
from lsmia.training.trainer import train_augment, training_step

RECIPE = check_recipe({
    "alpha": -0.05, "epochs": 1, "batch_size": 64,
    "optimizer": {"name": "adam", "lr": 1e-3},
    "lr_schedule": {"name": "none"},
    "augment": {"crop_scale": [0.85, 1.0], "jitter": [0.2, 0.2, 0.1, 0.1], "flip": True},
})


def step_throughput(arch: str, size: int, batch: int, steps: int, device: torch.device) -> float:
    """Images per second over ``steps`` training steps, after one warm-up step."""
    model = create_model(arch, 100).to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    model.train()
    optimizer = build_optimizer(model.parameters(), RECIPE["optimizer"])
    augment = train_augment(RECIPE["augment"], size)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)
    labels = torch.randint(0, 100, (batch,), device=device)
    training_step(model, optimizer, images, labels, augment, generator, -0.05)
    _sync(device)
    started = time.perf_counter()
    for _ in range(steps):
        training_step(model, optimizer, images, labels, augment, generator, -0.05)
    _sync(device)
    return steps * batch / (time.perf_counter() - started)


def demo_epoch_seconds(device: torch.device, workdir: Path) -> float:
    """Wall time of ``train`` for one epoch of 832 training and 128 test images (32 px)."""
    rng = np.random.default_rng(0)
    labels = np.arange(960) % 20
    index = pd.DataFrame({"label": labels, "identity": [f"id{label}" for label in labels],
                          "split": ["train"] * 832 + ["test"] * 128, "source": "benchmark"})
    images = rng.integers(0, 256, (960, 32, 32, 3), dtype=np.uint8)
    data = write_packed(workdir / "data", images, index, {"seed": 0})
    model = create_model("tiny_resnet", 20)
    started = time.perf_counter()
    train(model, RECIPE, PackedDataset(data, "train"), PackedDataset(data, "test"), device=device,
          workdir=workdir / f"run-{device.type}", log_csv=workdir / f"{device.type}.csv",
          input_size=32, progress=False)
    return time.perf_counter() - started


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per row")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--skip-large", action="store_true", help="leave out ResNet-152")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for device in devices:
            rate = step_throughput("tiny_resnet", 32, 64, args.steps * 4, device)
            rows.append(("tiny_resnet", 32, 64, device.type, f"{rate:,.0f}", "–"))
            seconds = demo_epoch_seconds(device, Path(tmp))
            rows.append(("tiny_resnet, train() epoch", 32, 64, device.type,
                         f"{832 / seconds:,.0f}", f"{seconds:.2f}"))
            if not args.skip_large:
                batch = 64 if device.type == "cuda" else 8
                rate = step_throughput("resnet152", 224, batch, args.steps, device)
                rows.append(("resnet152 (timm)", 224, batch, device.type, f"{rate:,.1f}", "–"))
    gpu = f", GPU {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    print(f"`{' '.join([Path(sys.executable).name, *sys.argv])}`\n")
    print(f"Machine: {platform.machine()} {platform.processor() or ''}, {args.threads} torch "
          f"threads, torch {torch.__version__}{gpu}\n")
    print("| model | input px | batch | device | images/s | epoch s |")
    print("|---|---:|---:|---|---:|---:|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")


if __name__ == "__main__":
    main()
