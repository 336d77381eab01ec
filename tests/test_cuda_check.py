"""A job that asked for a GPU and cannot use CUDA stops before any work, naming the cause.

CUDA is faked: torch.cuda's functions are monkeypatched, nvidia-smi is replaced by a stub.
"""
from __future__ import annotations

import types

import pytest
import torch

from lsmia import cuda_check, runtime
from lsmia.cuda_check import CudaUnusableError, arch_supported, require_cuda_if_asked
from lsmia.jobkit import logged

CUDA13_ARCHS = ["sm_75", "sm_80", "sm_86", "sm_90", "sm_100", "sm_120"]
V100 = {"name": "Tesla V100-SXM2-32GB", "compute_cap": "7.0", "driver_version": "550.54.15"}


@pytest.fixture
def node(monkeypatch):
    """A node as torch sees it; tests set the GPUs, arch list and environment they need."""
    for name in cuda_check.GPU_VARIABLES + ("SLURM_JOB_ID",):
        monkeypatch.delenv(name, raising=False)
    state = types.SimpleNamespace(smi=[], available=False, capability=(8, 0), archs=CUDA13_ARCHS)
    monkeypatch.setattr(cuda_check, "nvidia_smi_gpus", lambda: state.smi)
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: state.available)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1 if state.available else 0)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=0: state.capability)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda index=0: "Fake GPU")
    monkeypatch.setattr(torch.cuda, "get_arch_list", lambda: state.archs)
    return state


def fake_snakemake(tmp_path, device, gpu=1):
    return types.SimpleNamespace(
        log=[str(tmp_path / "job.log")], threads=1, config={"device": device},
        resources=types.SimpleNamespace(gpu=gpu) if gpu else types.SimpleNamespace(),
    )


def test_gpu_job_with_empty_cuda_visible_devices_stops_before_its_body(tmp_path, node, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    ran = []
    with pytest.raises(CudaUnusableError) as error:
        with logged(fake_snakemake(tmp_path, "auto")):
            ran.append(True)
    assert not ran, "the job's work started although CUDA is unusable"
    message = str(error.value)
    assert "CUDA_VISIBLE_DEVICES is empty" in message
    assert "torch.version.cuda = 13.0" in message and "sm_75" in message
    assert "--index-url https://download.pytorch.org/whl/cu126" in message
    assert "device: cpu" in message
    assert "CudaUnusableError" in (tmp_path / "job.log").read_text()  # and it is in the job's log


def test_architecture_without_kernels_names_capability_and_arch_list(node):
    node.available, node.capability = True, (7, 0)  # Volta under a CUDA 13 build
    node.smi = [V100]
    with pytest.raises(CudaUnusableError) as error:
        require_cuda_if_asked("cuda", gpu_rule=True)
    message = str(error.value)
    assert "compute capability 7.0, for which this build has no kernels" in message
    assert str(CUDA13_ARCHS) in message
    assert "Tesla V100-SXM2-32GB, compute capability 7.0, driver 550.54.15" in message


def test_driver_too_old_under_slurm_with_auto(node, monkeypatch):
    monkeypatch.setenv("SLURM_JOB_GPUS", "0")
    node.smi = [dict(V100, name="NVIDIA A100", compute_cap="8.0")]
    with pytest.raises(CudaUnusableError, match="is_available\\(\\) is False.*driver too old"):
        require_cuda_if_asked("auto", gpu_rule=True)


def test_explicit_cuda_on_a_cpu_machine_fails_in_resolve_device(node):
    with pytest.raises(CudaUnusableError, match="device: cuda"):
        runtime.resolve_device("cuda")


def test_cpu_build_is_named(node, monkeypatch):
    monkeypatch.setattr(torch.version, "cuda", None)
    with pytest.raises(CudaUnusableError, match="CPU-only build"):
        require_cuda_if_asked("cuda:0", gpu_rule=False)


def test_auto_without_any_gpu_hint_runs_on_cpu(tmp_path, node):
    """A laptop running the demo: no GPU variables, no nvidia-smi: auto means CPU, no error."""
    with logged(fake_snakemake(tmp_path, "auto")):
        device = runtime.resolve_device("auto")
    assert device == torch.device("cpu")


def test_cpu_rules_and_explicit_cpu_never_ask(tmp_path, node, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    require_cuda_if_asked("cpu", gpu_rule=True)
    with logged(fake_snakemake(tmp_path, "auto", gpu=0)):
        pass
    with logged(fake_snakemake(tmp_path, "cuda", gpu=0)):  # the paper's device, a CPU rule
        pass


def test_usable_gpu_passes(node, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-1234")
    node.available, node.capability = True, (9, 0)
    require_cuda_if_asked("auto", gpu_rule=True)
    require_cuda_if_asked("cuda", gpu_rule=False)


@pytest.mark.parametrize(("capability", "archs", "expected"), [
    ((8, 6), ["sm_80"], True),           # same major, lower minor cubin runs
    ((8, 0), ["sm_86"], False),          # a higher minor does not
    ((7, 0), CUDA13_ARCHS, False),       # Volta on a CUDA 13 build
    ((6, 1), ["sm_50", "sm_60", "sm_70"], True),
    ((12, 0), ["sm_90", "compute_90"], True),  # PTX JIT-compiles for newer devices
    ((9, 0), ["sm_90a"], True),
    ((10, 0), ["sm_90a"], False),        # arch-specific cubins run only on their own capability
])
def test_arch_supported(capability, archs, expected):
    assert arch_supported(capability, archs) is expected


@pytest.mark.slow
def test_gpu_rule_through_snakemake_fails_naming_the_cause(tmp_path, monkeypatch):
    """The demo's first GPU job on a node whose GPU is hidden (CUDA_VISIBLE_DEVICES empty)."""
    from workflow_helpers import mini_demo_config, snakemake, write_config

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    configfile = write_config(mini_demo_config("cuda"), tmp_path / "demo.yaml")
    target = "results/cuda/models/synth/public/tiny_resnet/model.pt"
    run = snakemake(tmp_path, configfile, "--cores", "1", target)
    assert run.returncode != 0
    log = (tmp_path / "logs/cuda/pretrain_public/synth/tiny_resnet.log").read_text()
    assert "asked for a GPU" in log and "CUDA_VISIBLE_DEVICES is empty" in log, log[-3000:]
    assert "training" not in log and not (tmp_path / "results/cuda/models").exists()
