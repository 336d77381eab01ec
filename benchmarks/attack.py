"""PPA optimisation throughput (samples × iterations per second) through ``optimise_stage``.

Rows: the demo's procedural prior with a tiny target at 32 px (CPU, and CUDA when present); and a
StyleGAN2-sized *stand-in* generator (the real one needs the NVlabs checkout and FFHQ pickle) with
timm's ResNet-152 at 224 px. The stand-in has StyleGAN2 config-F's shape at 1024²: 18 style
vectors of 512, an 8-layer 512-wide mapping network, two style-modulated 3×3 convolutions per
resolution from 4² to 1024² with 512→32 channels, so its cost and memory per image are of the same
order; it lacks weight demodulation, noise and the skip-ToRGB branches and is not StyleGAN.

    .venv/bin/python benchmarks/attack.py [--devices cpu cuda] [--large-cpu-iterations 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import timm
import torch
import torch.nn.functional as F
from torch import nn

from lsmia.attacks import ProceduralFacePrior, optimise_stage
from machine import machine
from lsmia.attacks.generators import broadcast_w, truncate
from lsmia.attacks.views import PAPER_CROP_FRACTION

# channels per resolution of StyleGAN2 config F at 1024² (channel_base 32768, channel_max 512)
CHANNELS = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64, 1024: 32}


class StyleGAN2SizedStandin(nn.Module):
    """A generator with StyleGAN2-1024's latent shape and convolution sizes (benchmark only)."""

    w_dim, num_ws, image_size = 512, 18, 1024

    def __init__(self):
        super().__init__()
        self.mapping = nn.Sequential(*[m for _ in range(8) for m in (nn.Linear(512, 512),
                                                                     nn.LeakyReLU(0.2))])
        self.const = nn.Parameter(torch.randn(512, 4, 4))
        self.affines, self.convs = nn.ModuleList(), nn.ModuleList()
        previous = 512
        for resolution, channels in CHANNELS.items():
            for _ in range(1 if resolution == 4 else 2):
                self.affines.append(nn.Linear(512, previous))
                self.convs.append(nn.Conv2d(previous, channels, 3, padding=1))
                previous = channels
        self.torgb_affine = nn.Linear(512, previous)
        self.torgb = nn.Conv2d(previous, 3, 1)
        assert len(self.convs) + 1 == self.num_ws

    @torch.no_grad()
    def sample_w(self, n, seed, psi=1.0, cutoff=None):
        device = self.const.device
        z = torch.randn(n, 512, generator=torch.Generator().manual_seed(seed)).to(device)
        w = self.mapping(z).unsqueeze(1).repeat(1, self.num_ws, 1)
        return truncate(w, torch.zeros(512, device=device), psi, cutoff)

    def synthesise(self, w):
        ws = broadcast_w(w, self.num_ws)
        x = self.const.unsqueeze(0).expand(len(ws), -1, -1, -1)
        for index, (affine, conv) in enumerate(zip(self.affines, self.convs)):
            if index % 2 == 1:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.leaky_relu(conv(x * affine(ws[:, index])[:, :, None, None]), 0.2)
        return self.torgb(x * self.torgb_affine(ws[:, -1])[:, :, None, None])


def tiny_target(num_classes):
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
    )


def time_optimisation(generator, target, samples, iterations, input_size, device):
    """Seconds of ``optimise_stage`` for ``samples`` latents (one batch), ``iterations`` steps."""
    w = generator.sample_w(samples, seed=0, psi=0.5, cutoff=8).cpu()
    sample_out = {"w": w.reshape(1, samples, *w.shape[1:]), "classes": torch.tensor([0])}
    with tempfile.TemporaryDirectory() as tmp:
        def run(steps, name):
            start = time.perf_counter()
            optimise_stage(
                generator, target, sample_out, iterations=steps, lr=0.005, betas=(0.1, 0.1),
                crop_scale=(0.9, 1.0), crop_fraction=PAPER_CROP_FRACTION, input_size=input_size,
                batch_size=samples, seed=0, device=device, state_path=Path(tmp) / f"{name}.pt",
                log_csv=Path(tmp) / f"{name}.csv",
            )
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter() - start

        run(1, "warmup")
        return run(iterations, "timed")


def benchmark_rows(devices, args):
    rows = []
    for device in devices:
        torch.manual_seed(0)
        procedural = ProceduralFacePrior(32, device)
        samples, iterations = (8, 10) if device.type == "cpu" else (128, 50)
        seconds = time_optimisation(procedural, tiny_target(10), samples, iterations, 32, device)
        rows.append(("procedural faces 32²", "tiny CNN", 32, device, samples, iterations, seconds))

        iterations = args.large_cpu_iterations if device.type == "cpu" else 10
        if iterations == 0:
            continue
        samples = 1 if device.type == "cpu" else 8
        standin = StyleGAN2SizedStandin().to(device).eval().requires_grad_(False)
        target = timm.create_model("resnet152", pretrained=False, num_classes=530)
        seconds = time_optimisation(standin, target, samples, iterations, 224, device)
        rows.append(("StyleGAN2-sized stand-in 1024²", "resnet152", 224, device, samples,
                     iterations, seconds))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", nargs="+", default=None,
                        help="cpu and/or cuda (default: cpu, plus cuda when available)")
    parser.add_argument("--large-cpu-iterations", type=int, default=1,
                        help="steps of the 1024² stand-in on CPU (0 skips it; each is slow)")
    args = parser.parse_args()
    names = args.devices or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    rows = benchmark_rows([torch.device(name) for name in names], args)
    print(f"`.venv/bin/python {' '.join(sys.argv)}` on {machine()}\n")
    print("| prior | target | input px | device | samples | iterations | seconds | images/s |")
    print("|---|---|---|---|---|---|---|---|")
    for prior, target, size, device, samples, iterations, seconds in rows:
        rate = samples * iterations / seconds if seconds > 0 else math.inf
        print(f"| {prior} | {target} | {size} | {device} | {samples} | {iterations} | "
              f"{seconds:.2f} | {rate:.2f} |")


if __name__ == "__main__":
    main()
