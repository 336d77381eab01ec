"""PPA optimisation stage against a plain per-iteration PPA loop, same generator and target.

The generator is NVlabs' StyleGAN2-ADA ``training.networks.Generator`` from the vendored code
(``../shared/vendor/stylegan2-ada-pytorch``), randomly initialised at 128 px, pickled as
the NVlabs pickles are (``G``, ``D``, ``G_ema``) and loaded through lsmia's ``StyleGAN2Prior``; targets are torchvision ResNets
(``tv:resnet18``, ``tv:resnet152``, 530 classes, random weights) at 224 px.

* **plain loop**: the authors' optimisation loop re-implemented from PAPER.md's facts: the target
  is only put in eval mode (its weight gradients are computed), one random resized crop per batch,
  Poincaré loss, Adam, and per iteration a no-grad softmax confidence read to the host for the log;
  the stage ends when the loop does (it returns the optimised w).
* **optimise_stage**: lsmia's whole stage as the rule runs it (frozen target, per-sample crops,
  loss/confidence/gradient-cosine traces, fingerprint, state file and trace CSV, the final
  flip-averaged confidence of the final w).

* **optimise_stage, compiled target** (``--compile-target``): the same stage with
  ``compile_target=True`` (``torch.compile`` of the frozen target, static shapes; the generator
  and the plain loop stay eager), as ``attack.optimise.compile_target: true`` runs it.

Throughput is samples × iterations per second of the whole call; each run alternates the
variants. The untimed warm-up pair (``--warmup``) is printed too: with ``--compile-target`` its
compiled stage carries the compilation (once per shape and process, as in a job; inductor's cache
on disk shortens it in later processes). Each run's seconds are printed as it ends (a slow machine
shows progress), then the table. With ``--profile`` the script first times the parts of one
iteration (generator forward + backward to w, target forward + backward with and without weight
gradients, the stage's final pass) to show where the time goes.

    .venv/bin/python benchmarks/attack.py [--archs resnet18 resnet152] [--repeats 3] [--size 128]
        [--warmup 1] [--compile-target] [--profile | --profile-only]
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from lsmia.attacks import StyleGAN2Prior, optimise_stage, poincare_loss
from lsmia.attacks.views import PAPER_CROP_FRACTION, flip_averaged_softmax, target_view
from lsmia.data import augment
from lsmia.models import create_model
from machine import machine

VENDORED = Path(__file__).resolve().parents[1].parent / "shared" / "vendor" / "stylegan2-ada-pytorch"
SETTINGS = dict(lr=0.005, betas=(0.1, 0.1), crop_scale=(0.9, 1.0), crop_fraction=PAPER_CROP_FRACTION)


def vendored_generator(folder: Path, resolution: int, device) -> StyleGAN2Prior:
    """A randomly initialised NVlabs generator, through the same loader as a real pickle."""
    sys.path.insert(0, str(VENDORED))
    from training.networks import Generator

    torch.manual_seed(0)
    network = Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=resolution, img_channels=3)
    network.eval().requires_grad_(False)
    path = folder / "generator.pkl"
    with open(path, "wb") as handle:
        pickle.dump({"G": network, "D": nn.Linear(1, 1), "G_ema": network}, handle)
    return StyleGAN2Prior(VENDORED, path, device)


def plain_ppa_loop(generator, target: nn.Module, w_start, targets, *, iterations: int,
                   input_size: int, seed: int) -> torch.Tensor:
    """Adam on w with the Poincaré loss, as the authors' loop does it (see the module docstring)."""
    target.eval().requires_grad_(True)
    w = w_start.clone().requires_grad_(True)
    optimiser = torch.optim.Adam([w], lr=SETTINGS["lr"], betas=SETTINGS["betas"])
    crops = torch.Generator().manual_seed(seed)
    for _ in range(iterations):
        view = target_view(generator.synthesise(w), SETTINGS["crop_fraction"], input_size)
        box = augment.crop_boxes(1, input_size, input_size, SETTINGS["crop_scale"], (1.0, 1.0),
                                 crops)
        logits = target(augment.crop_and_resize(view, box.expand(len(view), 4), input_size))
        loss = poincare_loss(logits, targets)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            confidence = logits.softmax(dim=1).gather(1, targets[:, None]).mean().item()
    del confidence
    return w.detach()


def time_run(generator, target, samples, iterations, input_size, device, folder,
             compile_target=False) -> tuple[float, ...]:
    """Seconds of the plain loop, optimise_stage and (``compile_target``) optimise_stage with a
    compiled target, one after the other on the same start latents."""
    w = generator.sample_w(samples, seed=0, psi=0.5, cutoff=8)[:, 0].to(device)
    targets = torch.arange(samples, device=device) % 10
    sample_out = {"w": w.cpu().reshape(1, samples, -1), "classes": torch.tensor([0])}
    start = time.perf_counter()
    plain_ppa_loop(generator, target, w, targets, iterations=iterations, input_size=input_size,
                   seed=0)
    seconds = [time.perf_counter() - start]
    for compiled in (False, True) if compile_target else (False,):
        for stale in folder.glob("state*"):
            stale.unlink()
        start = time.perf_counter()
        optimise_stage(generator, target, sample_out, iterations=iterations,
                       input_size=input_size, batch_size=samples, seed=0, device=device,
                       state_path=folder / "state.pt", log_csv=folder / "log.csv",
                       compile_target=compiled, **SETTINGS)
        seconds.append(time.perf_counter() - start)
    return tuple(seconds)


def describe(seconds: tuple[float, ...]) -> str:
    names = ("plain", "stage", "stage compiled")
    return ", ".join(f"{name} {value:.2f} s" for name, value in zip(names, seconds))


def profile_iteration(generator, target, samples, input_size, device, repeats):
    """Median seconds of each part of one iteration (``repeats`` interleaved timings each)."""
    w = generator.sample_w(samples, seed=0, psi=0.5, cutoff=8)[:, 0].to(device)
    targets = torch.arange(samples, device=device) % 10
    view = target_view(generator.synthesise(w), SETTINGS["crop_fraction"], input_size).detach()

    def generator_pass():
        latent = w.clone().requires_grad_(True)
        target_view(generator.synthesise(latent), SETTINGS["crop_fraction"], input_size).sum() \
            .backward()

    def target_pass(weight_gradients: bool):
        target.eval().requires_grad_(weight_gradients)
        images = view.clone().requires_grad_(True)
        poincare_loss(target(images), targets).backward()
        target.zero_grad(set_to_none=True)

    @torch.no_grad()
    def final_pass():
        target.requires_grad_(False)
        final_view = target_view(generator.synthesise(w), SETTINGS["crop_fraction"], input_size)
        flip_averaged_softmax(target, final_view).gather(1, targets[:, None])

    parts: dict[str, Callable[[], None]] = {
        "generator forward + backward to w": generator_pass,
        "target forward + backward, weight gradients (plain loop)": lambda: target_pass(True),
        "target forward + backward, frozen (stage)": lambda: target_pass(False),
        "final pass: synthesis + view and mirror through the target (stage only)": final_pass,
    }
    seconds: dict[str, list[float]] = {name: [] for name in parts}
    for _ in range(repeats):
        for name, part in parts.items():
            start = time.perf_counter()
            part()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def spread(values) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archs", "--targets", nargs="+", default=["resnet18", "resnet152"],
                        help="torchvision ResNets to attack")
    parser.add_argument("--repeats", "--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=8, help="batch size")
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--size", "--resolution", type=int, default=128,
                        help="the generator's resolution (px)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="iterations of an untimed first pair per target (0: none)")
    parser.add_argument("--compile-target", action="store_true",
                        help="also time optimise_stage with compile_target=True in every run")
    parser.add_argument("--profile", action="store_true",
                        help="first time the parts of one iteration per target")
    parser.add_argument("--profile-only", action="store_true",
                        help="time only the parts of one iteration, no whole-stage pairs")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = torch.device(args.device)
    rows, profiles = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generator = vendored_generator(folder, args.size, device)
        for name in args.archs:
            target = create_model(f"tv:{name}", 530).to(device)
            if args.profile or args.profile_only:
                profiles.append((name, profile_iteration(generator, target, args.samples, 224,
                                                         device, args.repeats)))
                print(f"{name} profile: {profiles[-1][1]}", file=sys.stderr, flush=True)
            if args.profile_only:
                continue
            timing = (generator, target, args.samples)
            if args.warmup:
                warm = time_run(*timing, args.warmup, 224, device, folder, args.compile_target)
                print(f"{name} warm-up ({args.warmup} iterations): {describe(warm)}",
                      file=sys.stderr, flush=True)
            runs = []
            for run in range(args.repeats):
                runs.append(time_run(*timing, args.iterations, 224, device, folder,
                                     args.compile_target))
                print(f"{name} run {run + 1}: {describe(runs[-1])}, load "
                      f"{os.getloadavg()[0]:.2f}", file=sys.stderr, flush=True)
            rows.append((name, runs))
    load = os.getloadavg()
    work = "one iteration" if args.profile_only else f"{args.iterations} iterations"
    print(f"`.venv/bin/python {' '.join(sys.argv)}` on {machine()}, load average {load[0]:.2f} "
          f"{load[1]:.2f} {load[2]:.2f}; StyleGAN2-ADA (vendored, random) {args.size} px, "
          f"batch {args.samples}, {work}, {args.repeats} runs\n")
    if profiles:
        print("| part of one iteration, s (min / median / max) | "
              + " | ".join(name for name, _ in profiles) + " |")
        print("|---|" + "---|" * len(profiles))
        for part in profiles[0][1]:
            print(f"| {part} | " + " | ".join(spread(p[part]) for _, p in profiles) + " |")
        print()
    if args.profile_only:
        return
    print_table(rows, args.samples * args.iterations, args.compile_target)


def print_table(rows, work: int, compile_target: bool) -> None:
    """Seconds (min/median/max) and images·iterations/s of each variant; the stage's speed-up
    over the plain loop from the medians, the compiled target's from each run's pair."""
    compiled_head = (" optimise_stage, compiled target s (min/median/max) | compiled img/s | "
                     "stage s / compiled s, per run (min/median/max) |") if compile_target else ""
    print("| target | plain loop s (min/median/max) | optimise_stage s (min/median/max) | "
          f"plain img/s | stage img/s | stage / plain |{compiled_head}")
    print("|---|---|---|---:|---:|---:|" + ("---|---:|---:|" if compile_target else ""))
    for name, runs in rows:
        columns = [[run[i] for run in runs] for i in range(len(runs[0]))]
        rates = [work / statistics.median(seconds) for seconds in columns]
        line = (f"| {name} | {spread(columns[0])} | {spread(columns[1])} | {rates[0]:.2f} | "
                f"{rates[1]:.2f} | {rates[1] / rates[0]:.2f}× |")
        if compile_target:
            paired = [stage / compiled for stage, compiled in zip(columns[1], columns[2])]
            line += f" {spread(columns[2])} | {rates[2]:.2f} | {spread(paired)} |"
        print(line)


if __name__ == "__main__":
    main()
