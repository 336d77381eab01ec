"""Workflows through profiles/slurm on a real one-node Slurm cluster (tests/slurm_cluster.py).

Skipped only where the cluster cannot exist (not root, no apt); under CI=true it must run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yte
from slurm_cluster import SlurmCluster, unavailable_reason
from workflow_helpers import REPO, mini_demo_config, paper_threads, snakemake, write_config

pytestmark = pytest.mark.slurm

PROFILE = REPO / "profiles" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# The repository's demo rules through the cluster (tests/workflow_helpers.py shrinks the demo):
# one attack and its metrics, with a target trained long enough to be preempted after an epoch.
DEMO_RESULTS = "results/slurm"
DEMO_TARGET = f"{DEMO_RESULTS}/attacks/synth/tiny_resnet/hard/hard/hard/metrics.json"
DEMO_EPOCHS = 120
DEMO_TIMEOUT_S = 900

# What the test cluster needs beyond profiles/slurm, given on the command line so that the profile
# keeps the plugin defaults real clusters need: no accounting database here, so job states come
# from squeue (reliable while MinJobAge=900 s >= 3 x the first check), polled after 2 s, not 40 s.
TEST_CLUSTER_ARGS = [
    "--slurm-status-command=squeue",
    "--slurm-init-seconds-before-status-checks=2",
]
# The profile's knobs, pointed at the test cluster's partitions and a made-up account.
TEST_CLUSTER_ENV = {
    "LSMIA_SLURM_ACCOUNT": "lsmia-test",
    "LSMIA_SLURM_PARTITION": "cpu",
    "LSMIA_SLURM_GPU_PARTITION": "gpu",
}
RUN_TIMEOUT_S = 150

# A two-rule stand-in for the demo, named like the real rules so that the profile's per-rule
# resources apply: prepare_synthetic (CPU) and train_target (GPU, resumable, SIGTERM-safe).
TINY_SNAKEFILE = """\
from lsmia.cluster import max_runtime, wall_time


rule all:
    input:
        "results/prepare.json",
        "results/train.json",


rule prepare_synthetic:
    output:
        "results/prepare.json",
    log:
        "logs/prepare_synthetic.log",
    script:
        "record_job.py"


rule train_target:
    output:
        "results/train.json",
    log:
        "logs/train_target.log",
    resources:
        gpu=1,
        mem_mb=lambda wildcards, attempt: 2000 * attempt,
        runtime=lambda wildcards, attempt: wall_time(45, attempt, True, max_runtime()),
    script:
        "resumable_training.py"
"""

RECORD_JOB = """\
import json, os

names = ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "CUDA_VISIBLE_DEVICES")
with open(snakemake.output[0], "w") as out:
    json.dump({name: os.environ.get(name) for name in names}, out)
"""

TRAIN_STEPS = 24
RESUMABLE_TRAINING = f"""\
# Stands in for the trainer: checkpoints every step, resumes, and exits 143 on SIGTERM.
import json, os, signal, sys, time
from pathlib import Path

checkpoint = Path("checkpoints/train_target.json")
checkpoint.parent.mkdir(exist_ok=True)
state = json.loads(checkpoint.read_text()) if checkpoint.exists() else {{"step": 0, "attempts": []}}
state["attempts"].append({{
    "job": os.environ["SLURM_JOB_ID"],
    "partition": os.environ.get("SLURM_JOB_PARTITION"),
    "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    "resumed_from": state["step"],
    "mem_mb": snakemake.resources.mem_mb,
}})


def save():
    partial = checkpoint.with_suffix(".part")
    partial.write_text(json.dumps(state))
    os.replace(partial, checkpoint)


def preempted(signum, frame):
    state["attempts"][-1]["terminated_at"] = state["step"]
    save()
    sys.exit(128 + signum)


signal.signal(signal.SIGTERM, preempted)
save()
while state["step"] < {TRAIN_STEPS}:
    time.sleep(0.25)
    state["step"] += 1
    save()
Path(snakemake.output[0]).write_text(json.dumps(state))
"""


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = unavailable_reason()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the Slurm tests, but this machine {reason}")
        pytest.skip(reason)
    cluster = SlurmCluster.start()
    print(f"\nSlurm test cluster up in {cluster.bring_up_seconds:.1f} s at {cluster.root}")
    yield cluster
    cluster.stop()


def default_resource(name: str, attempt: int):
    """A resource as profiles/slurm's default-resources set it at ``attempt``, read as Snakemake does."""
    with open(PROFILE / "config.yaml") as stream:
        profile = yte.process_yaml(stream, require_use_yte=True)
    return eval(str(profile["default-resources"][name]), {"attempt": attempt})


def start_snakemake(cluster: SlurmCluster, workdir: Path, *args: str, env=None) -> subprocess.Popen:
    command = [
        *SNAKEMAKE,
        "--profile",
        str(PROFILE),
        *TEST_CLUSTER_ARGS,
        "--directory",
        str(workdir),
    ]
    with open(workdir / "snakemake.out", "w") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [*command, *args],
            env={**cluster.env, **TEST_CLUSTER_ENV, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def finish(process: subprocess.Popen, workdir: Path, timeout: float) -> None:
    """Wait for Snakemake; on a hang, kill it (by PID) and fail with its output."""
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    output = (workdir / "snakemake.out").read_text()
    assert process.returncode == 0, f"snakemake exited {process.returncode}:\n{output[-6000:]}"


def megabytes(slurm_memory: str) -> float:
    """``scontrol``'s memory (``32000M``, ``62.50G``) in MB."""
    scale = {"M": 1, "G": 1024, "T": 1024 * 1024}[slurm_memory[-1]]
    return float(slurm_memory[:-1]) * scale


def minutes(time_limit: str) -> int:
    """``scontrol``'s time limit (``08:00:00``, ``1-00:00:00``) in minutes."""
    days, _, clock = time_limit.rpartition("-")
    hours, mins, _ = (int(part) for part in clock.split(":"))
    return int(days or 0) * 1440 + hours * 60 + mins


def preempt_first_training_job(cluster, process, checkpoint: Path, deadline: float) -> str:
    """Once the first train_target job has made progress, send it SIGTERM as a preemption would."""
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists():
            state = json.loads(checkpoint.read_text())
            if state["step"] >= 2:
                job = state["attempts"][0]["job"]
                cluster.run("scancel", "--signal=TERM", job)
                return job
        time.sleep(0.1)
    output = (checkpoint.parents[1] / "snakemake.out").read_text()
    pytest.fail(f"the train_target job never ran long enough to be preempted:\n{output[-6000:]}")


def test_tiny_workflow_runs_and_resumes_after_preemption(slurm_cluster, tmp_path):
    began = time.monotonic()
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    (tmp_path / "record_job.py").write_text(RECORD_JOB)
    (tmp_path / "resumable_training.py").write_text(RESUMABLE_TRAINING)

    process = start_snakemake(slurm_cluster, tmp_path, "--snakefile", str(tmp_path / "Snakefile"))
    preempted_job = preempt_first_training_job(
        slurm_cluster, process, tmp_path / "checkpoints/train_target.json", began + RUN_TIMEOUT_S
    )
    finish(process, tmp_path, timeout=RUN_TIMEOUT_S - (time.monotonic() - began))
    print(f"tiny workflow through Slurm, one preemption included: {time.monotonic() - began:.1f} s")

    # The CPU job: default partition of the profile's knob, no GPU.
    prepared = json.loads((tmp_path / "results/prepare.json").read_text())
    assert prepared["SLURM_JOB_PARTITION"] == "cpu"
    assert prepared["CUDA_VISIBLE_DEVICES"] is None
    cpu_job = slurm_cluster.job(prepared["SLURM_JOB_ID"])
    assert cpu_job["JobState"] == "COMPLETED"
    assert "TresPerJob" not in cpu_job
    assert cpu_job["Account"] == "lsmia-test"
    assert megabytes(cpu_job["MinMemoryNode"]) == default_resource("mem_mb", 1)

    # The GPU job: preempted once, resubmitted with more memory and the same wall time (it resumes
    # from its checkpoint), resumed, finished.
    trained = json.loads((tmp_path / "results/train.json").read_text())
    first, second = trained["attempts"]
    assert first["job"] == preempted_job != second["job"]
    assert first["terminated_at"] >= 2
    assert second["resumed_from"] == first["terminated_at"]
    assert trained["step"] == TRAIN_STEPS
    for attempt, record in enumerate((first, second), start=1):
        job = slurm_cluster.job(record["job"])
        assert job["JobState"] == ("FAILED" if attempt == 1 else "COMPLETED")
        assert record["partition"] == job["Partition"] == "gpu"
        assert job["TresPerJob"] == "gres:gpu:1", "the gpu resource must become sbatch --gpus=1"
        assert record["cuda_visible_devices"] == "0"
        assert job["Account"] == "lsmia-test"
        assert record["mem_mb"] == 2000 * attempt == megabytes(job["MinMemoryNode"])
        assert minutes(job["TimeLimit"]) == 45
        assert job["Requeue"] == "1"

    # Slurm's logs stay out of logs/: kept for the failed job only (the plugin's default).
    slurm_logs = sorted(
        p.relative_to(tmp_path / "slurm-logs") for p in (tmp_path / "slurm-logs").rglob("*.log")
    )
    assert slurm_logs == [Path(f"rule_train_target/{preempted_job}.log")]
    assert sorted(p.name for p in (tmp_path / "logs").iterdir()) == [
        "prepare_synthetic.log",
        "train_target.log",
    ]


def test_gpus_can_be_requested_by_gres(slurm_cluster, tmp_path):
    """LSMIA_SLURM_GPU_GRES: GPU rules are submitted with sbatch --gres=<it> instead of --gpus."""
    began = time.monotonic()
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    (tmp_path / "record_job.py").write_text(RECORD_JOB)
    (tmp_path / "resumable_training.py").write_text(RESUMABLE_TRAINING)
    process = start_snakemake(slurm_cluster, tmp_path, "--snakefile", str(tmp_path / "Snakefile"),
                              env={"LSMIA_SLURM_GPU_GRES": "gpu:1", "LSMIA_MAX_RUNTIME": "30"})
    finish(process, tmp_path, timeout=RUN_TIMEOUT_S)
    print(f"tiny workflow through Slurm, GPUs by --gres: {time.monotonic() - began:.1f} s")

    (record,) = json.loads((tmp_path / "results/train.json").read_text())["attempts"]
    job = slurm_cluster.job(record["job"])
    assert job["JobState"] == "COMPLETED" and job["Partition"] == "gpu"
    assert "TresPerJob" not in job, "no --gpus next to --gres"
    assert job["TresPerNode"] == "gres:gpu:1"
    assert record["cuda_visible_devices"] == "0"
    assert minutes(job["TimeLimit"]) == 30, "LSMIA_MAX_RUNTIME caps the rule's 45 minutes"
    prepared = json.loads((tmp_path / "results/prepare.json").read_text())
    assert "TresPerNode" not in slurm_cluster.job(prepared["SLURM_JOB_ID"])


def preempt_when_checkpointed(cluster, process, workdir: Path, deadline: float) -> str:
    """SIGTERM the train_target job once its first epoch checkpoint is on disk; its job id."""
    checkpoint = workdir / DEMO_RESULTS / "models/synth/tiny_resnet/hard/checkpoint/checkpoint.pt"
    while time.monotonic() < deadline and process.poll() is None:
        if checkpoint.exists():
            jobs = cluster.run("squeue", "--noheader", "--format=%i %j %k").stdout.splitlines()
            training = [line.split()[0] for line in jobs if "train_target" in line]
            if training:
                cluster.run("scancel", "--signal=TERM", training[0])
                return training[0]
        time.sleep(0.05)
    output = (workdir / "snakemake.out").read_text()
    pytest.fail(f"the demo's train_target never checkpointed while running:\n{output[-6000:]}")


def without_provenance(record: dict) -> dict:
    """A metrics record without where and when it was made (extractor names carry the hash of a
    model file, and with it the file's creation time)."""
    return {key: value for key, value in record.items() if key not in ("provenance", "extractors")}


def test_demo_attack_through_slurm_survives_preemption_and_equals_a_local_run(slurm_cluster, tmp_path):
    """The real demo rules on the cluster, from data preparation (CPU partition) through training,
    the three attack stages and the attack's metrics (GPU partition); the target's training is
    preempted after its first epoch and resumed. Every output equals that of an undisturbed local
    run with the same threads per rule: the paper config's."""
    config = mini_demo_config("slurm")
    config["threads"] = paper_threads()
    config["device"] = "cpu"  # the test cluster's GPU is a fake device: `auto` would refuse it
    config["recipes"]["hard"]["epochs"] = DEMO_EPOCHS
    cluster_dir, local_dir = tmp_path / "cluster", tmp_path / "local"
    for directory in (cluster_dir, local_dir):
        directory.mkdir()
        write_config(config, directory / "demo.yaml")

    began = time.monotonic()
    process = start_snakemake(
        slurm_cluster, cluster_dir, "--snakefile", str(REPO / "Snakefile"),
        "--configfile", str(cluster_dir / "demo.yaml"), "--", DEMO_TARGET,
    )
    job = preempt_when_checkpointed(slurm_cluster, process, cluster_dir, began + DEMO_TIMEOUT_S)
    finish(process, cluster_dir, timeout=DEMO_TIMEOUT_S - (time.monotonic() - began))
    print(f"demo attack through Slurm, one preemption included: {time.monotonic() - began:.1f} s")

    preempted = slurm_cluster.job(job)
    assert preempted["JobState"] == "FAILED" and preempted["Partition"] == "gpu"
    assert minutes(preempted["TimeLimit"]) == 480, "train_target's declared wall time"
    assert preempted["TresPerJob"] == "gres:gpu:1"
    assert preempted["NumCPUs"] == str(paper_threads()["train"]), "the config's threads per job"
    slurm_log = cluster_dir / f"slurm-logs/rule_train_target/synth_tiny_resnet_hard/{job}.log"
    assert "returned non-zero exit status 75" in slurm_log.read_text(), "not the preemption exit"
    log = (cluster_dir / "logs/slurm/train_target/synth/tiny_resnet/hard.log").read_text()
    assert "resuming from" in log, log[-3000:]  # the retry's log; Snakemake cleared the first
    assert not list((cluster_dir / DEMO_RESULTS).rglob("checkpoint.pt")), "a checkpoint outlived its job"

    # Inside a job Snakemake caps the config's threads at the cores it finds (--cores all); the
    # local run gets as many, so every rule runs with the same torch threads in both.
    model = "models/synth/tiny_resnet/hard/model.pt"
    job_cores = torch.load(cluster_dir / DEMO_RESULTS / model, weights_only=True)["meta"]["provenance"]["torch_threads"]
    local = snakemake(local_dir, local_dir / "demo.yaml", "--cores", str(job_cores), "--", DEMO_TARGET)
    assert local.returncode == 0, local.stderr[-3000:]
    on_cluster, undisturbed = (torch.load(d / DEMO_RESULTS / model, weights_only=True)["state_dict"]
                               for d in (cluster_dir, local_dir))
    assert on_cluster.keys() == undisturbed.keys()
    for key, value in undisturbed.items():
        assert torch.equal(on_cluster[key], value), f"{key} differs after preemption and resume"
    attack = "attacks/synth/tiny_resnet/hard/hard/hard"
    on_cluster, undisturbed = (torch.load(d / DEMO_RESULTS / attack / "select.pt", weights_only=True)
                               for d in (cluster_dir, local_dir))
    assert torch.equal(on_cluster["images"], undisturbed["images"])
    assert torch.equal(on_cluster["w"], undisturbed["w"])
    on_cluster, undisturbed = (json.loads((d / DEMO_TARGET).read_text()) for d in (cluster_dir, local_dir))
    assert without_provenance(on_cluster) == without_provenance(undisturbed)
