"""benchmarks/gpu.py (make gpu-check): refuses without a GPU; its code runs end to end on CPU
with toy sizes; its job counts are the paper DAG's."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import yaml
from fake_raw import make_fake_celeba, make_fake_facescrub
from nvlabs import stylegan2_checkout
from workflow_helpers import REPO, snakemake, write_config

SCRIPT = REPO / "benchmarks" / "gpu.py"


def run_gpu_check(*args, env=None):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}, timeout=900)


def test_refuses_in_one_line_without_a_gpu(tmp_path):
    run = run_gpu_check("--out", str(tmp_path), env={"CUDA_VISIBLE_DEVICES": ""})
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu-check: refused: no usable GPU here"), lines
    assert not (tmp_path / "gpu.json").exists()


@pytest.mark.slow
def test_tiny_run_on_cpu_writes_json_and_markdown(tmp_path):
    checkout = stylegan2_checkout()
    run = run_gpu_check("--allow-cpu", "--tiny", "--out", str(tmp_path),
                        "--checkout", str(checkout), env={"CUDA_VISIBLE_DEVICES": ""})
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads((tmp_path / "gpu.json").read_text())
    assert report["device"] == "cpu" and report["custom_ops"]["compiled"] is None
    assert report["custom_ops"]["num_ws"] == 10
    assert [(r["precision"], r["channels_last"], r["compiled_target"])
            for r in report["attack"]] == [
        ("fp32", False, False), ("fp32", True, False), ("bf16", False, False),
        ("bf16", True, False), ("fp32", True, True), ("bf16", True, True)]
    assert all(r["images_iterations_per_s"] > 0 for r in report["attack"] + report["training"]
               if "images_iterations_per_s" in r)
    assert {r["model"] for r in report["training"]} == {"tv:resnet18", "tv:inception_v3"}
    hours = report["estimate"]["gpu_hours"]["fp32"]
    stages = sum(value for key, value in hours.items() if key != "total")
    assert hours["total"] == pytest.approx(stages, abs=0.5)
    block = (tmp_path / "gpu.md").read_text()
    assert "| fp32, contiguous, batch 2 |" in block and "Estimated GPU hours" in block
    assert "| bf16, channels-last, compiled target, batch 2 |" in block


@pytest.mark.slow
def test_job_counts_are_those_the_paper_dry_run_plans(tmp_path, monkeypatch):
    # benchmarks/ holds a module named `training`, like the NVlabs checkout: on sys.path only here.
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from gpu import paper_jobs
    from test_workflow import job_counts

    from lsmia.config import load_config

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    make_fake_facescrub(tmp_path / "facescrub")
    make_fake_celeba(tmp_path / "celeba")
    for name in ("facescrub", "celeba"):
        config["datasets"][name]["raw_dir"] = str(tmp_path / name)
    configfile = write_config(config, tmp_path / "paper.yaml")
    run = snakemake(tmp_path, configfile, "-n", "--cores", "4", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    planned = job_counts(run.stdout + run.stderr)
    jobs = paper_jobs(load_config(REPO / "config" / "config.yaml"))
    assert planned["train_target"] == len(jobs["trainings"])
    assert planned["train_evaluation_model"] == len(jobs["evaluation_models"])
    assert planned["attack_sample"] == len(jobs["samples"])
    assert planned["attack_optimise"] == len(jobs["optimisations"])
    assert planned["attack_select"] == planned["attack_metrics"] == len(jobs["selections"])
    assert planned["knowledge_extraction"] == len(jobs["knowledge"])
