"""Running the repository's Snakefile from tests: a reduced demo config and a snakemake runner."""
from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"

# The demo, shrunk until the whole DAG runs in a couple of minutes on two cores: fewer identities
# and images, a few epochs, a handful of recipes, two seeds for the main trio only. Every artefact
# but the toy example (its own test runs it, tests/test_paper_toy.py) is still built.
MINI_RECIPES = ("hard", "ls0.1", "nls0.05", "mid0.1", "bido-0.1-1", "eval", "public", "knowledge")
MINI_ARTEFACTS = {
    "main_table": {"datasets": ["synth"], "architecture": "tiny_resnet", "recipes": ["hard", "ls0.1", "nls0.05"]},
    "stage_ablation": {"dataset": "synth", "architecture": "tiny_resnet", "baseline": "hard", "others": ["ls0.1"]},
    "training_size": {"dataset": "synth", "architecture": "tiny_resnet", "recipes": ["hard"], "sizes": [60]},
    "alpha_sweep": {"dataset": "synth", "architecture": "tiny_resnet", "recipes": ["nls0.05", "hard", "ls0.1"]},
    "embeddings": {"dataset": "synth", "architecture": "tiny_resnet", "recipes": ["hard", "ls0.1"], "classes": [0, 1, 2]},
    "gradient_similarity": {"dataset": "synth", "architecture": "tiny_resnet", "recipes": ["hard", "ls0.1"]},
    "defence_comparison": {
        "dataset": "synth", "architecture": "tiny_resnet", "recipes": ["hard", "mid0.1", "bido-0.1-1", "ls0.1"]
    },
    "architectures": {"dataset": "synth", "architectures": ["tiny_resnext"], "recipes": ["hard"]},
    "sample_grid": {"dataset": "synth", "architecture": "tiny_resnet", "recipes": ["hard", "ls0.1"], "classes": 2, "images": 2},
}


MINI_SEEDS = [42, 43]  # main_table and gradient_similarity show both


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


def paper_threads() -> dict:
    """The paper config's threads per kind of job (config/config.yaml ``threads``)."""
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())["threads"]


def mini_demo_config(experiment: str = "mini") -> dict:
    """config/demo.yaml reduced to a DAG with every artefact that runs in minutes."""
    config = copy.deepcopy(demo_config())
    config["experiment"] = experiment
    config["datasets"]["synth"].update(identities=6, public_identities=8, images_per_identity=20)
    config["training"].update(epochs=15, lr_schedule={"name": "multistep", "milestones": [12], "gamma": 0.1})
    config["recipes"] = {name: config["recipes"][name] for name in MINI_RECIPES}
    config["recipes"]["public"] = {"epochs": 4}
    config["recipes"]["knowledge"]["epochs"] = 4
    attack = config["attack"]
    attack["sample"].update(search_space_size=40, candidates_per_class=6)
    attack["optimise"].update(iterations=3)
    attack["select"].update(final_per_class=4, transforms=2)
    config["artefacts"] = copy.deepcopy(MINI_ARTEFACTS)
    config["seeds"] = MINI_SEEDS
    for name in ("stage_ablation", "training_size", "alpha_sweep", "defence_comparison", "architectures"):
        config["artefacts"][name]["seeds"] = 1
    return config


def write_config(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(workdir: Path, configfile: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir``; output and errors come back as text."""
    command = [
        sys.executable, "-m", "snakemake",
        "--snakefile", str(SNAKEFILE),
        "--directory", str(workdir),
        "--configfile", str(configfile),
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A session of its own: on timeout the jobs are killed with Snakemake, not left running.
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, start_new_session=True)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
