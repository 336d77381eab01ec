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
fp32 and in bf16 (the generator always in fp32), each with and without channels-last, the training throughput of ResNet-152 and Inception-v3 at
batch 128, the peak GPU memory of each, and an estimate of the paper DAG's GPU hours from those
figures, with the job counts taken from the paper config. Writes `gpu.json` and `gpu.md` (a block
for docs/benchmarks.md) to `--out`. Without a usable GPU it refuses in one line (exit status 2).
About 3-5 minutes on one recent GPU, most of it the custom ops' first compilation.
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
    report = {"machine": machine(), "device": str(device), "sizes": "tiny" if args.tiny else "paper",
              "checkout": str(checkout)}
    with tempfile.TemporaryDirectory() as tmp:
        prior, report["custom_ops"] = load_prior(checkout, sizes["generator"], Path(tmp), device)
        report["attack"] = [attack_throughput(prior, sizes, precision, channels_last, device)
                            for precision in ("fp32", "bf16") for channels_last in (False, True)]
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
    sys.exit(f"gpu-check: no NVlabs stylegan2-ada-pytorch checkout in {[str(p) for p in candidates]}"
             " (`snakemake fetch_stylegan2` clones one into resources/)")


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
        synthesis_kwargs={key: spec[key] for key in ("channel_base", "channel_max", "num_fp16_res",
                                                     "conv_clamp")},
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
                      device: torch.device) -> dict:
    """Images·iterations/s of the attack's optimisation step and its peak GPU memory."""
    from lsmia.attacks import poincare_loss
    from lsmia.attacks.views import PAPER_CROP_FRACTION, target_view
    from lsmia.data import augment
    from lsmia.models import create_model

    arch, input_size = sizes["target"]
    batch, steps = sizes["attack_batch"], sizes["attack_steps"]
    target = create_model(arch, sizes["classes"]).to(device).eval().requires_grad_(False)
    if channels_last:
        target = target.to(memory_format=torch.channels_last)
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
    return {"precision": precision, "channels_last": channels_last, "batch": batch,
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
    """The GPU work of the config's DAG: trainings (dataset, arch, recipe), sampling jobs
    (dataset, arch, sample recipe), optimisations (…, optimise recipe), selections and metrics
    (…, select recipe) and knowledge students, as the paper rules derive them from `artefacts`."""
    art = config["artefacts"]
    triples = set()
    for name, spec in art.items():
        if name in ("toy_example",):
            continue
        if name == "main_table":
            triples |= {(d, spec["architecture"], r) for d in spec["datasets"] for r in spec["recipes"]}
        elif name == "architectures":
            triples |= {(spec["dataset"], a, r) for a in spec["architectures"] for r in spec["recipes"]}
        elif name == "training_size":
            names = [f"{r}-n{s}" for r in spec["recipes"] for s in spec["sizes"]] + spec["recipes"]
            triples |= {(spec["dataset"], spec["architecture"], r) for r in names}
        elif name == "stage_ablation":
            triples |= {(spec["dataset"], spec["architecture"], r)
                        for r in (spec["baseline"], *spec["others"])}
        else:
            triples |= {(spec["dataset"], spec["architecture"], r) for r in spec["recipes"]}
    attacks = {(d, a, r, r, r) for d, a, r in triples}
    if "stage_ablation" in art:
        spec, base = art["stage_ablation"], art["stage_ablation"]["baseline"]
        for other in spec["others"]:
            for combo in ((other, base, base), (base, other, base), (base, base, other)):
                attacks.add((spec["dataset"], spec["architecture"], *combo))
    knowledge = ({(d, art["main_table"]["architecture"], r) for d in art["main_table"]["datasets"]
                  for r in art["main_table"]["recipes"]} if "main_table" in art else set())
    return {"trainings": sorted(triples), "evaluation_models": sorted(config["datasets"]),
            "samples": sorted({a[:3] for a in attacks}), "optimisations": sorted({a[:4] for a in attacks}),
            "selections": sorted(attacks), "knowledge": sorted(knowledge)}


def estimate_gpu_hours(config: dict, report: dict) -> dict:
    """GPU hours of the config's DAG from the measured throughputs (fp32, as the paper runs)."""
    from lsmia.config import attack_settings, resolve_recipe

    jobs = paper_jobs(config)
    attack_rate = {(row["precision"], row["channels_last"]): row["images_iterations_per_s"]
                   for row in report["attack"]}
    train = {(row["model"], row["precision"]): row["images_per_s"] for row in report["training"]}
    measured_arch = next(row["model"] for row in report["training"])

    def train_rate(model, precision):
        if (model, precision) in train:
            return train[(model, precision)]
        return train[(measured_arch, precision)] * GFLOPS.get(measured_arch, 4.0) / GFLOPS.get(model, 4.0)

    def private_images(dataset):
        manifest = REPO / "results" / config["experiment"] / "data" / dataset / "private" / "manifest.json"
        if manifest.is_file():
            return json.loads(manifest.read_text())["num_images"]
        return DEFAULT_IMAGES.get(config["datasets"][dataset]["source"], 30_000)

    def classes(dataset):
        spec = config["datasets"][dataset]
        return {"facescrub": 530, "celeba": spec.get("identities", 1000)}.get(spec["source"], 100)

    def training_seconds(dataset, arch_name, recipe_name, precision):
        recipe, model = resolve_recipe(config, recipe_name), config["architectures"][arch_name]["model"]
        total = private_images(dataset)
        train_images = min(recipe.get("training_set_size") or total, int(0.9 * total))
        per_epoch = train_images + (total - int(0.9 * total)) / 3  # test set: forward only
        return recipe["epochs"] * per_epoch / train_rate(model, precision)

    totals = {}
    for precision, channels_last in (("fp32", False), ("bf16", True)):
        rate = attack_rate[(precision, channels_last)]
        seconds = {"training": sum(training_seconds(*t, precision) for t in jobs["trainings"])}
        seconds["training"] += sum(training_seconds(d, config["datasets"][d]["evaluation"]["architecture"],
                                                    config["datasets"][d]["evaluation"]["recipe"], precision)
                                   for d in jobs["evaluation_models"])
        sample = optimise = select = 0.0
        for dataset, *_ in jobs["samples"]:
            sample += attack_settings(config, dataset)["sample"]["search_space_size"] / (3 * rate)
        for dataset, *_ in jobs["optimisations"]:
            settings = attack_settings(config, dataset)
            optimise += (classes(dataset) * settings["sample"]["candidates_per_class"]
                         * settings["optimise"]["iterations"] / rate)
        for dataset, *_ in jobs["selections"]:
            settings = attack_settings(config, dataset)
            select += (classes(dataset) * settings["sample"]["candidates_per_class"]
                       * (1 + settings["select"]["transforms"] / 10) / (3 * rate))
        seconds.update(attack_sample=sample, attack_optimise=optimise, attack_select=select)
        knowledge = resolve_recipe(config, config["metrics"]["knowledge"]["recipe"])
        student = config["architectures"][config["metrics"]["knowledge"]["architecture"]]["model"]
        seconds["knowledge"] = sum(
            knowledge["epochs"] * classes(d) * attack_settings(config, d)["select"]["final_per_class"]
            / train_rate(student, precision) for d, *_ in jobs["knowledge"])
        totals[f"{precision}{'+channels_last' if channels_last else ''}"] = {
            key: round(value / 3600, 1) for key, value in {**seconds, "total": sum(seconds.values())}.items()}
    return {"jobs": {key: len(value) for key, value in jobs.items()}, "gpu_hours": totals,
            "assumptions": "private images per dataset from results/<experiment>/data manifests, "
                           f"else {DEFAULT_IMAGES}; sampling and selection cost a third of an "
                           "optimisation step per scored image (forward only; selection scores 100 "
                           "views per latent in batches, counted as 10 steps); unmeasured "
                           "architectures scaled from ResNet-152 by GFLOPs; metrics and data "
                           "preparation left out"}


def markdown(report: dict) -> str:
    ops = report["custom_ops"]
    compiled = {True: "yes", False: "**no** (slow reference code; is `ninja` on PATH?)",
                None: "not applicable on CPU"}[ops["compiled"]]
    lines = [f"Machine: {report['machine']}; sizes: {report['sizes']}.", "",
             f"StyleGAN2 custom ops compiled: {compiled} (first synthesis {ops['first_synthesis_s']} s, "
             f"{ops['parameters_M']} M generator parameters, {ops['num_ws']} style vectors).", "",
             "| attack optimisation | images·iterations/s | peak GPU memory (GiB) |", "|---|---|---|"]
    for row in report["attack"]:
        layout = "channels-last" if row["channels_last"] else "contiguous"
        lines.append(f"| {row['precision']}, {layout}, batch {row['batch']} | "
                     f"{row['images_iterations_per_s']} | {row['peak_gpu_memory_gib'] or '–'} |")
    lines += ["", "| training | images/s | peak GPU memory (GiB) |", "|---|---|---|"]
    for row in report["training"]:
        lines.append(f"| {row['model']} at {row['input_size']} px, {row['precision']}"
                     f"{', channels-last' if row['channels_last'] else ''}, batch {row['batch']} | "
                     f"{row['images_per_s']} | {row['peak_gpu_memory_gib'] or '–'} |")
    estimate = report["estimate"]
    stages = list(next(iter(estimate["gpu_hours"].values())))
    lines += ["", f"Estimated GPU hours of the DAG ({', '.join(f'{v} {k}' for k, v in estimate['jobs'].items())}):", "",
              "| numerics | " + " | ".join(stages) + " |", "|---" * (len(stages) + 1) + "|"]
    for numerics, hours in estimate["gpu_hours"].items():
        lines.append(f"| {numerics} | " + " | ".join(str(hours[s]) for s in stages) + " |")
    lines += ["", f"Assumptions: {estimate['assumptions']}.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
