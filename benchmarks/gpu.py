"""GPU check: the paper's networks at their real sizes, random weights, nothing downloaded.

    make gpu-check                            # = .venv/bin/python benchmarks/gpu.py
    .venv/bin/python benchmarks/gpu.py [--out results/gpu-check] [--checkout PATH] [--config FILE]
    .venv/bin/python benchmarks/gpu.py --allow-cpu --tiny    # smoke run of the code path (tests)

Networks: StyleGAN2-ADA's generator from the NVlabs checkout in its FFHQ configuration at 1024 px
(NVlabs' `paper1024`: 8 mapping layers, channel_base 32768, channel_max 512), torchvision's
ResNet-152 at 224 px and Inception-v3 at 299 px (through lsmia's model factory), all with random
weights. It reports whether StyleGAN2's custom CUDA ops compiled (they need `ninja`, a pinned
requirement), the attack's optimisation throughput (images·iterations/s: synthesis → centre crop
→ resize → random resized crop → ResNet-152 → Poincaré loss → backward → Adam) with the target in
fp32 and in bf16 (the generator always in fp32), each with and without channels-last, and both
channels-last again with the target compiled as `attack.optimise.compile_target` does it (its
compilation falls in the untimed warm-up steps), the training throughput of ResNet-152 and
Inception-v3 at batch 128, the peak GPU memory of each, and an estimate of the paper DAG's GPU
hours from those figures, with the job counts taken from the paper config. Writes `gpu.json` and `gpu.md` (a block
for docs/benchmarks.md) to `--out`. Without a usable GPU it refuses in one line (exit status 2).
About 3-5 minutes on one recent GPU, most of it the custom ops' first compilation, plus the two
compilations of the target for the compiled rows (not yet timed on a GPU).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from machine import machine

REPO = Path(__file__).resolve().parents[1]
CHECKOUTS = (REPO / "resources" / "stylegan2-ada-pytorch",
             REPO.parent / "shared" / "vendor" / "stylegan2-ada-pytorch")
REFUSED_EXIT = 2

# NVlabs' paper1024 configuration (FFHQ 1024 px); --tiny: the same code at toy sizes.
SIZES = {
    "paper": {
        "generator": {"z_dim": 512, "w_dim": 512, "img_resolution": 1024, "mapping_layers": 8,
                      "channel_base": 32768, "channel_max": 512, "num_fp16_res": 4,
                      "conv_clamp": 256},
        "target": ("tv:resnet152", 224), "evaluation": ("tv:inception_v3", 299),
        "attack_batch": 25, "attack_steps": 8, "train_batch": 128, "train_steps": 8, "classes": 530,
    },
    "tiny": {
        "generator": {"z_dim": 64, "w_dim": 64, "img_resolution": 64, "mapping_layers": 8,
                      "channel_base": 1024, "channel_max": 32, "num_fp16_res": 0,
                      "conv_clamp": None},
        "target": ("tv:resnet18", 32), "evaluation": ("tv:inception_v3", 75),
        "attack_batch": 2, "attack_steps": 1, "train_batch": 2, "train_steps": 1, "classes": 10,
    },
}
# (precision, channels-last, compiled target) of the attack rows: channels-last is what the
# workflow uses on CUDA; the compiled rows are `attack.optimise.compile_target: true`.
ATTACK_VARIANTS = (("fp32", False, False), ("fp32", True, False), ("bf16", False, False),
                   ("bf16", True, False), ("fp32", True, True), ("bf16", True, True))
# Forward+backward GFLOPs per image at the input sizes the paper uses (torchvision's model cards),
# to scale the measured ResNet-152 throughput to architectures that are not measured.
GFLOPS = {"tv:resnet152": 11.51, "tv:resnet50": 4.09, "tv:resnext50_32x4d": 4.23,
          "tv:densenet121": 2.83, "tv:inception_v3": 5.71}
# Private images per dataset when no prepared manifest is found: not known exactly (FaceScrub
# depends on which release files could be retrieved); CelebA's 1,000 largest identities ≈ 30 each.
DEFAULT_IMAGES = {"facescrub": 48_000, "celeba": 30_000}


def main(argv=None) -> int:
    args = parse_args(argv)
    device = usable_device(args.allow_cpu)
    sizes = dict(SIZES["tiny" if args.tiny else "paper"])
    sizes["attack_batch"] = args.attack_batch or sizes["attack_batch"]
    checkout = find_checkout(args.checkout)
    torch.backends.cudnn.benchmark = True
    report = {"machine": machine(), "device": str(device),
              "sizes": "tiny" if args.tiny else "paper", "checkout": str(checkout)}
    with tempfile.TemporaryDirectory() as tmp:
        prior, report["custom_ops"] = load_prior(checkout, sizes["generator"], Path(tmp), device)
        report["attack"] = [attack_throughput(prior, sizes, precision, layout, compiled, device)
                            for precision, layout, compiled in ATTACK_VARIANTS]
        del prior
    report["training"] = [training_throughput(model, size, sizes, precision, device)
                          for model, size in (sizes["target"], sizes["evaluation"])
                          for precision in ("fp32", "bf16")]
    report["estimate"] = estimate_gpu_hours(load_config(args.config), report)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / "gpu.md").write_text(markdown(report))
    print(markdown(report))
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "results" / "gpu-check"))
    parser.add_argument("--checkout", help="NVlabs stylegan2-ada-pytorch checkout (default: "
                        "$LSMIA_STYLEGAN2_CHECKOUT, resources/, ../shared/vendor/)")
    parser.add_argument("--config", default=str(REPO / "config" / "config.yaml"),
                        help="config whose DAG the GPU-hour estimate covers")
    parser.add_argument("--allow-cpu", action="store_true", help="run on CPU when there is no GPU")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (a smoke run of the code)")
    parser.add_argument("--attack-batch", type=int,
                        help="latents per optimisation batch (default: the authors' 25; lower it "
                             "on a GPU with less than about 40 GiB)")
    return parser.parse_args(argv)


def usable_device(allow_cpu: bool) -> torch.device:
    """CUDA, or CPU with ``--allow-cpu``; otherwise refuse in one line."""
    from lsmia.cuda_check import cuda_problem

    problem = cuda_problem()
    if problem is None:
        return torch.device("cuda")
    if allow_cpu:
        return torch.device("cpu")
    print(f"gpu-check: refused: no usable GPU here ({problem}); run it on a GPU node, e.g. "
          "`srun --gpus=1 make gpu-check`", file=sys.stderr)
    sys.exit(REFUSED_EXIT)


def find_checkout(given: str | None) -> Path:
    candidates = [Path(given)] if given else [
        *([Path(os.environ["LSMIA_STYLEGAN2_CHECKOUT"])] if "LSMIA_STYLEGAN2_CHECKOUT" in os.environ
          else []), *CHECKOUTS]
    for path in candidates:
        if (path / "training" / "networks.py").is_file():
            return path.resolve()
    sys.exit(f"gpu-check: no NVlabs stylegan2-ada-pytorch checkout in "
             f"{[str(p) for p in candidates]} (`snakemake fetch_stylegan2` clones one into "
             "resources/)")


def load_prior(checkout: Path, spec: dict, tmp: Path, device: torch.device):
    """A random-weight generator pickled as NVlabs pickles and loaded by lsmia's own loader; the
    custom ops' build status and the first synthesis's time (their compilation, if any)."""
    from lsmia.attacks.stylegan2 import StyleGAN2Prior, put_ninja_on_path

    put_ninja_on_path()
    sys.path.insert(0, str(checkout))
    from training.networks import Generator

    torch.manual_seed(0)
    generator = Generator(
        z_dim=spec["z_dim"], c_dim=0, w_dim=spec["w_dim"], img_resolution=spec["img_resolution"],
        img_channels=3, mapping_kwargs={"num_layers": spec["mapping_layers"]},
        synthesis_kwargs={key: spec[key] for key in
                          ("channel_base", "channel_max", "num_fp16_res", "conv_clamp")},
    ).eval().requires_grad_(False)
    path = tmp / "generator.pkl"
    with open(path, "wb") as handle:  # legacy.load_network_pkl wants G, D and G_ema modules
        pickle.dump({"G": generator, "D": nn.Identity(), "G_ema": generator}, handle)
    del generator
    prior = StyleGAN2Prior(checkout, path, device)
    began = time.perf_counter()
    with torch.no_grad():
        prior.synthesise(prior.sample_w(1, seed=0))
    synchronize(device)
    first = time.perf_counter() - began
    ops = {name.rsplit(".", 1)[1]: sys.modules[name]._plugin is not None
           for name in ("torch_utils.ops.bias_act", "torch_utils.ops.upfirdn2d")}
    status = {"compiled": all(ops.values()) if device.type == "cuda" else None, **ops,
              "first_synthesis_s": round(first, 2), "num_ws": prior.num_ws,
              "parameters_M": round(sum(p.numel() for p in prior.G.parameters()) / 1e6, 1)}
    return prior, status


def attack_throughput(prior, sizes: dict, precision: str, channels_last: bool,
                      compile_target: bool, device: torch.device) -> dict:
    """Images·iterations/s of the attack's optimisation step and its peak GPU memory; with
    ``compile_target`` the target goes through the stage's own ``compiled_target``."""
    from lsmia.attacks import poincare_loss
    from lsmia.attacks.optimise import compiled_target
    from lsmia.attacks.views import PAPER_CROP_FRACTION, target_view
    from lsmia.data import augment
    from lsmia.models import create_model

    arch, input_size = sizes["target"]
    batch, steps = sizes["attack_batch"], sizes["attack_steps"]
    target = create_model(arch, sizes["classes"]).to(device).eval().requires_grad_(False)
    if channels_last:
        target = target.to(memory_format=torch.channels_last)
    if compile_target:
        target = compiled_target(target)
    w = prior.sample_w(batch, seed=0, psi=0.5, cutoff=8)[:, 0].clone().requires_grad_(True)
    optimiser = torch.optim.Adam([w], lr=0.005, betas=(0.1, 0.1))
    labels = torch.arange(batch, device=device) % sizes["classes"]
    crops = torch.Generator().manual_seed(0)

    def step():
        boxes = augment.crop_boxes(batch, input_size, input_size, (0.9, 1.0), (1.0, 1.0), crops)
        # The generator runs in fp32 (force_fp32, as the attack calls it; NVlabs' layers assert
        # their dtype); bf16 autocast covers the target, as in the workflow.
        view = target_view(prior.synthesise(w), PAPER_CROP_FRACTION, input_size)
        view = augment.crop_and_resize(view, boxes.to(device), input_size)
        if channels_last:
            view = view.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            logits = target(view).float()
        loss = poincare_loss(logits, labels)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    seconds, peak = timed(step, steps, device)
    return {"precision": precision, "channels_last": channels_last,
            "compiled_target": compile_target, "batch": batch,
            "images_iterations_per_s": round(batch * steps / seconds, 2),
            "peak_gpu_memory_gib": peak}


def training_throughput(arch: str, input_size: int, sizes: dict, precision: str,
                        device: torch.device) -> dict:
    """Training images/s (Adam, label-smoothing loss) at the paper's batch size; bf16 runs with
    channels-last as the trainer does on CUDA."""
    from lsmia.models import create_model
    from lsmia.training.losses import label_smoothing_loss

    batch, steps = sizes["train_batch"], sizes["train_steps"]
    torch.manual_seed(0)
    model = create_model(arch, sizes["classes"]).to(device).train()
    channels_last = precision == "bf16"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    images = torch.rand(batch, 3, input_size, input_size, device=device) * 2 - 1
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(sizes["classes"], (batch,), device=device)

    def step():
        with autocast(device, precision):
            logits = model(images)
        loss = label_smoothing_loss(logits.float(), labels, 0.1)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    seconds, peak = timed(step, steps, device)
    return {"model": arch, "input_size": input_size, "precision": precision,
            "channels_last": channels_last, "batch": batch,
            "images_per_s": round(batch * steps / seconds, 2), "peak_gpu_memory_gib": peak}


def autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def timed(step, steps: int, device: torch.device) -> tuple[float, float | None]:
    """Seconds for ``steps`` calls after two warm-up calls, and the peak GPU memory in GiB."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(2):
        step()
    synchronize(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - began
    peak = (round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            if device.type == "cuda" else None)
    return seconds, peak


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_config(path) -> dict:
    from lsmia.config import load_config as load

    return load(path)


def paper_jobs(config: dict) -> dict:
    """The GPU jobs of the config's DAG, as the paper rules derive them from `artefacts`: trainings
    (dataset, arch, recipe), evaluation models (dataset), samplings (dataset, arch, rs),
    optimisations (…, ro), selections (…, rsel; one metrics job each) and ξ students."""
    art = config["artefacts"]
    triples = set()
    for name, spec in art.items():
        if name == "toy_example":
            continue
        if name == "main_table":
            triples |= {(d, spec["architecture"], r)
                        for d in spec["datasets"] for r in spec["recipes"]}
        elif name == "architectures":
            triples |= {(spec["dataset"], a, r)
                        for a in spec["architectures"] for r in spec["recipes"]}
        else:
            recipes = list(spec.get("recipes", []))
            if name == "training_size":
                recipes += [f"{r}-n{size}" for r in spec["recipes"] for size in spec["sizes"]]
            if name == "stage_ablation":
                recipes = [spec["baseline"], *spec["others"]]
            triples |= {(spec["dataset"], spec["architecture"], r) for r in recipes}
    attacks = {(d, a, r, r, r) for d, a, r in triples}
    if "stage_ablation" in art:
        spec, base = art["stage_ablation"], art["stage_ablation"]["baseline"]
        for other in spec["others"]:
            for combo in ((other, base, base), (base, other, base), (base, base, other)):
                attacks.add((spec["dataset"], spec["architecture"], *combo))
    main = art.get("main_table")
    knowledge = {(d, main["architecture"], r) for d in main["datasets"]
                 for r in main["recipes"]} if main else set()
    return {"trainings": sorted(triples), "evaluation_models": sorted(config["datasets"]),
            "samples": sorted({a[:3] for a in attacks}),
            "optimisations": sorted({a[:4] for a in attacks}),
            "selections": sorted(attacks), "knowledge": sorted(knowledge)}


class Estimate:
    """GPU seconds of each kind of job from the measured throughputs, for one numerics setting."""

    def __init__(self, config: dict, report: dict, precision: str, channels_last: bool):
        self.config = config
        self.attack_rate = next(
            row["images_iterations_per_s"] for row in report["attack"]
            if (row["precision"], row["channels_last"], row["compiled_target"])
            == (precision, channels_last, False))
        self.train = {row["model"]: row["images_per_s"] for row in report["training"]
                      if row["precision"] == precision}
        self.measured = next(iter(self.train))

    def train_rate(self, model: str) -> float:
        """Measured, or the first measured model's scaled by GFLOPs."""
        if model in self.train:
            return self.train[model]
        return (self.train[self.measured] * GFLOPS.get(self.measured, 4.0)
                / GFLOPS.get(model, 4.0))

    def images(self, dataset: str) -> int:
        data = REPO / "results" / self.config["experiment"] / "data" / dataset / "private"
        if (data / "manifest.json").is_file():
            return json.loads((data / "manifest.json").read_text())["num_images"]
        return DEFAULT_IMAGES.get(self.config["datasets"][dataset]["source"], 30_000)

    def classes(self, dataset: str) -> int:
        from lsmia.config import entry_with_defaults

        spec = entry_with_defaults("dataset", self.config["datasets"][dataset])
        return {"facescrub": 530, "celeba": spec.get("identities")}.get(spec["source"], 100)

    def training(self, dataset: str, arch: str, recipe_name: str) -> float:
        from lsmia.config import resolve_recipe

        recipe = resolve_recipe(self.config, recipe_name)
        total = self.images(dataset)
        train_images = min(recipe.get("training_set_size") or total, int(0.9 * total))
        per_epoch = train_images + (total - int(0.9 * total)) / 3  # test set: forward only
        model = self.config["architectures"][arch]["model"]
        return recipe["epochs"] * per_epoch / self.train_rate(model)

    def attack(self, dataset: str, stage: str) -> float:
        from lsmia.config import attack_settings

        settings = attack_settings(self.config, dataset)
        candidates = self.classes(dataset) * settings["sample"]["candidates_per_class"]
        if stage == "sample":  # forward only: a third of a step per scored latent
            return settings["sample"]["search_space_size"] / (3 * self.attack_rate)
        if stage == "optimise":
            return candidates * settings["optimise"]["iterations"] / self.attack_rate
        # select: one synthesis and `transforms` target views per latent, counted as a tenth each
        return candidates * (1 + settings["select"]["transforms"] / 10) / (3 * self.attack_rate)

    def student(self, dataset: str) -> float:
        from lsmia.config import attack_settings, resolve_recipe

        spec = self.config["metrics"]["knowledge"]
        recipe = resolve_recipe(self.config, spec["recipe"])
        images = (self.classes(dataset)
                  * attack_settings(self.config, dataset)["select"]["final_per_class"])
        model = self.config["architectures"][spec["architecture"]]["model"]
        return recipe["epochs"] * images / self.train_rate(model)


def estimate_gpu_hours(config: dict, report: dict) -> dict:
    """GPU hours per stage of the config's DAG: fp32 (the paper's numerics) and bf16."""
    jobs = paper_jobs(config)
    datasets = config["datasets"]
    totals = {}
    for precision, channels_last in (("fp32", False), ("bf16", True)):
        e = Estimate(config, report, precision, channels_last)
        seconds = {
            "training": sum(e.training(*job) for job in jobs["trainings"]) + sum(
                e.training(d, datasets[d]["evaluation"]["architecture"],
                           datasets[d]["evaluation"]["recipe"]) for d in jobs["evaluation_models"]),
            **{f"attack_{stage}": sum(e.attack(job[0], stage) for job in jobs[kind])
               for stage, kind in (("sample", "samples"), ("optimise", "optimisations"),
                                   ("select", "selections"))},
            "knowledge": sum(e.student(job[0]) for job in jobs["knowledge"]),
        }
        seconds["total"] = sum(seconds.values())
        name = f"{precision}{'+channels_last' if channels_last else ''}"
        totals[name] = {key: round(value / 3600, 1) for key, value in seconds.items()}
    return {"jobs": {key: len(value) for key, value in jobs.items()}, "gpu_hours": totals,
            "assumptions": "private images per dataset from results/<experiment>/data manifests, "
                           f"else {DEFAULT_IMAGES}; sampling and selection cost a third of an "
                           "optimisation step per scored latent (forward only; selection's 100 "
                           "views per latent counted as 10 steps); unmeasured architectures scaled "
                           "from the measured ResNet-152 by GFLOPs; metrics and data preparation "
                           "left out"}


def markdown(report: dict) -> str:
    ops = report["custom_ops"]
    compiled = {True: "yes", False: "**no** (slow reference code; is `ninja` on PATH?)",
                None: "not applicable on CPU"}[ops["compiled"]]
    lines = [f"Machine: {report['machine']}; sizes: {report['sizes']}.", "",
             f"StyleGAN2 custom ops compiled: {compiled} (first synthesis "
             f"{ops['first_synthesis_s']} s, {ops['parameters_M']} M generator parameters, "
             f"{ops['num_ws']} style vectors).", "",
             "| attack optimisation | images·iterations/s | peak GPU memory (GiB) |",
             "|---|---|---|"]
    for row in report["attack"]:
        layout = "channels-last" if row["channels_last"] else "contiguous"
        layout += ", compiled target" if row["compiled_target"] else ""
        lines.append(f"| {row['precision']}, {layout}, batch {row['batch']} | "
                     f"{row['images_iterations_per_s']} | {row['peak_gpu_memory_gib'] or '–'} |")
    lines += ["", "| training | images/s | peak GPU memory (GiB) |", "|---|---|---|"]
    for row in report["training"]:
        layout = ", channels-last" if row["channels_last"] else ""
        lines.append(f"| {row['model']} at {row['input_size']} px, {row['precision']}{layout}, "
                     f"batch {row['batch']} | {row['images_per_s']} | "
                     f"{row['peak_gpu_memory_gib'] or '–'} |")
    estimate = report["estimate"]
    stages = list(next(iter(estimate["gpu_hours"].values())))
    jobs = ", ".join(f"{count} {kind}" for kind, count in estimate["jobs"].items())
    lines += ["", f"Estimated GPU hours of the DAG ({jobs}):", "",
              "| numerics | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
    for numerics, hours in estimate["gpu_hours"].items():
        lines.append(f"| {numerics} | " + " | ".join(str(hours[s]) for s in stages) + " |")
    lines += ["", f"Assumptions: {estimate['assumptions']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
