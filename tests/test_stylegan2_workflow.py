"""The workflow's attack and metrics rules on the real NVlabs StyleGAN2-ADA code (random weights).

A 64-px ``training.networks.Generator`` from the NVlabs checkout, pickled as NVlabs' training loop
writes snapshots, replaces the demo's procedural prior; the shrunk demo trains its tiny target and
evaluation model, and `attack_sample` → `attack_optimise` → `attack_select` → `real_embeddings` →
`attack_metrics` run through Snakemake as a user runs them.
"""
from __future__ import annotations

import json

import pytest
import torch
from nvlabs import SMALL_GENERATOR, stylegan2_checkout, write_network_pickle
from workflow_helpers import mini_demo_config, snakemake, write_config

from lsmia.attacks import load_generator, poincare_loss
from lsmia.attacks.views import PAPER_CROP_FRACTION, target_view
from lsmia.models import load_model

CLASSES, CANDIDATES, FINAL, ITERATIONS = 2, 3, 2, 2
NUM_WS = 10
ATTACK = "results/nvlabs/attacks/synth/tiny_resnet/hard"
TARGET = f"{ATTACK}/hard/hard/metrics.json"


def nvlabs_config(checkout, pickle_path) -> dict:
    """The mini demo cut to one target, two classes, three candidates, two iterations."""
    config = mini_demo_config("nvlabs")
    config["training"].update(
        epochs=2, lr_schedule={"name": "multistep", "milestones": [1], "gamma": 0.1})
    config["recipes"]["public"] = {"epochs": 1}
    config["metrics"].update(
        face={"kind": "public_model", "architecture": "tiny_inception"}, prdc_k=1)
    attack = config["attack"]
    attack["generator"] = {"kind": "stylegan2", "checkout": str(checkout),
                           "pickle": str(pickle_path)}
    attack["classes"] = CLASSES
    attack["sample"].update(search_space_size=8, candidates_per_class=CANDIDATES,
                            crop_fraction=PAPER_CROP_FRACTION, batch_size=4)
    # The paper's Adam settings; no random crop, so the loss trace compares like with like.
    attack["optimise"].update(iterations=ITERATIONS, lr=0.005, crop_scale=[1.0, 1.0], batch_size=4)
    attack["select"].update(final_per_class=FINAL, transforms=2, batch_size=4)
    return config


@pytest.fixture(scope="module")
def nvlabs_attack(tmp_path_factory):
    checkout = stylegan2_checkout()
    workdir = tmp_path_factory.mktemp("nvlabs-attack")
    pickle_path = write_network_pickle(workdir / "stylegan2-small.pkl", checkout)
    configfile = write_config(nvlabs_config(checkout, pickle_path), workdir / "nvlabs.yaml")
    run = snakemake(workdir, configfile, "--cores", "2", TARGET, timeout=900)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    return workdir, configfile, checkout, pickle_path


@pytest.mark.slow
def test_attack_stages_on_the_nvlabs_generator(nvlabs_attack):
    workdir, _, checkout, pickle_path = nvlabs_attack
    sample = torch.load(workdir / ATTACK / "sample.pt", weights_only=True)
    optimised = torch.load(workdir / ATTACK / "hard/optimise.pt", weights_only=True)
    selected = torch.load(workdir / ATTACK / "hard/hard/select.pt", weights_only=True)
    w_dim, side = SMALL_GENERATOR["w_dim"], round(64 * PAPER_CROP_FRACTION)
    assert sample["w"].shape == (CLASSES, CANDIDATES, NUM_WS, w_dim)
    assert optimised["w"].shape == (CLASSES, CANDIDATES, w_dim)
    assert optimised["loss_trace"].shape == (CLASSES, CANDIDATES, ITERATIONS)
    assert selected["images"].shape == (CLASSES, FINAL, side, side, 3)
    assert selected["images"].dtype == torch.uint8
    assert sample["classes"].tolist() == selected["classes"].tolist() == list(range(CLASSES))

    # Recomputed here: the optimised latents have a lower Poincaré loss than the start ones.
    target, meta = load_model(workdir / "results/nvlabs/models/synth/tiny_resnet/hard/model.pt")
    generator = load_generator({"kind": "stylegan2", "checkout": checkout, "pickle": pickle_path},
                               torch.device("cpu"))
    labels = torch.arange(CLASSES).repeat_interleave(CANDIDATES)

    def loss(w):
        with torch.no_grad():
            images = target_view(generator.synthesise(w.reshape(-1, w_dim)), PAPER_CROP_FRACTION,
                                 meta["input_size"])
            return poincare_loss(target(images), labels).item()

    start, end = loss(sample["w"][:, :, 0]), loss(optimised["w"])
    assert end < start, f"optimisation did not lower the Poincaré loss: {start:.5f} -> {end:.5f}"
    trace = optimised["loss_trace"].mean(dim=(0, 1))
    assert trace[-1] < trace[0]


@pytest.mark.slow
def test_metrics_of_the_nvlabs_attack(nvlabs_attack):
    workdir, *_ = nvlabs_attack
    record = json.loads((workdir / TARGET).read_text())
    assert record["recipes"] == {"sample": "hard", "optimise": "hard", "select": "hard"}
    metrics = record["metrics"]
    assert metrics["num_classes"] == CLASSES and metrics["images_per_class"] == FINAL
    for key in ("acc1", "acc5", "delta_face", "delta_eval", "fid", "precision", "coverage"):
        assert isinstance(metrics[key], float), key
    assert 0 <= metrics["acc1"] <= metrics["acc5"] <= 1


@pytest.mark.slow
def test_nvlabs_attack_rerun_is_a_no_op(nvlabs_attack):
    workdir, configfile, *_ = nvlabs_attack
    again = snakemake(workdir, configfile, "-n", "--cores", "2", TARGET)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Nothing to be done" in again.stdout + again.stderr
