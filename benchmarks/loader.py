"""Loader throughput: packed memory-mapped batches (+ on-device augmentation) versus decoding JPEG
files with PIL and torchvision transforms in a DataLoader, the reference code's way.

    .venv/bin/python benchmarks/loader.py [--images 2000] [--sizes 64 224] [--workers 2]

Prints a Markdown table of images per second (the better of two passes after a warm-up pass).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from lsmia.data.augment import TrainAugment, to_float
from lsmia.data.packed import PackedDataset, iterate_batches, write_packed
from lsmia.runtime import resolve_device

JITTER = (0.2, 0.2, 0.1, 0.1)


class JpegFolder(Dataset):
    def __init__(self, paths, labels, transform):
        self.paths, self.labels, self.transform = paths, labels, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB")), self.labels[i]


def make_images(root: Path, count: int, size: int) -> tuple[Path, list[Path]]:
    """``count`` smooth random pictures as JPEG files and as a packed dataset."""
    rng = np.random.default_rng(0)
    low = rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8)
    images = np.stack([np.asarray(Image.fromarray(tile).resize((size, size), Image.BICUBIC))
                       for tile in low])
    paths = []
    for i, image in enumerate(images):
        paths.append(root / f"jpeg{size}" / f"{i:05d}.jpg")
        paths[-1].parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(paths[-1], quality=95)
    index = pd.DataFrame({"label": np.arange(count) % 10, "identity": [f"c{i % 10}" for i in range(count)],
                          "split": "train", "source": [p.name for p in paths]})
    return write_packed(root / f"packed{size}", images, index, {"benchmark": True}), paths


def time_pass(batches) -> float:
    start = time.perf_counter()
    seen = 0
    for images, _ in batches:
        seen += len(images)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return seen / (time.perf_counter() - start)


def packed_rate(path: Path, size: int, batch_size: int, device, augment: bool) -> float:
    dataset = PackedDataset(path)
    transform = TrainAugment(resize=size, crop_scale=(0.85, 1.0), jitter=JITTER, flip=True)
    generator = torch.Generator().manual_seed(0)

    def batches():
        for images, labels in iterate_batches(dataset, batch_size, shuffle=True,
                                              generator=generator, device=device):
            images = to_float(images)
            yield (transform(images, generator) if augment else images), labels

    time_pass(batches())  # warm-up: page cache, kernels
    return max(time_pass(batches()) for _ in range(2))


def jpeg_rate(paths, size: int, batch_size: int, workers: int, augment: bool, device) -> float:
    steps = [T.Resize(size)]
    if augment:
        steps += [T.RandomResizedCrop(size, scale=(0.85, 1.0), ratio=(1.0, 1.0), antialias=True),
                  T.ColorJitter(*JITTER), T.RandomHorizontalFlip()]
    steps += [T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)]
    dataset = JpegFolder(paths, [i % 10 for i in range(len(paths))], T.Compose(steps))
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                        pin_memory=device.type == "cuda", persistent_workers=workers > 0)

    def batches():
        for images, labels in loader:
            yield images.to(device, non_blocking=True), labels

    time_pass(batches())  # warm-up: worker start, page cache
    return max(time_pass(batches()) for _ in range(2))


def machine(device) -> str:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU only"
    return (f"{platform.node()}, {len(os.sched_getaffinity(0))} CPU cores, {name}, "
            f"torch {torch.__version__}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 224])
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=min(8, len(os.sched_getaffinity(0))))
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            packed, paths = make_images(Path(tmp), args.images, size)
            for augment in (False, True):
                what = "load + augment" if augment else "load"
                rows.append((size, what, "packed memmap → device (+ batched augment)",
                             packed_rate(packed, size, args.batch_size, device, augment)))
                rows.append((size, what, f"JPEG + PIL/torchvision, DataLoader({args.workers} workers)",
                             jpeg_rate(paths, size, args.batch_size, args.workers, augment, device)))
    print(f"Command: `{' '.join(shlex.quote(a) for a in [sys.executable.split('/')[-1]] + sys.argv)}`  ")
    print(f"Machine: {machine(device)}; device {device}; {args.images} images, batch {args.batch_size}\n")
    print("| size | work | loader | images/s |")
    print("|---:|---|---|---:|")
    for size, what, loader, rate in rows:
        print(f"| {size} | {what} | {loader} | {rate:,.0f} |")


if __name__ == "__main__":
    main()
