"""A job that asked for a GPU and cannot use CUDA stops at once, saying why and what to install.

Without this, ``device: auto`` on a node whose GPU torch cannot use (a driver too old for the
wheel's CUDA, a GPU architecture the wheel has no kernels for, ``CUDA_VISIBLE_DEVICES`` empty)
silently runs on CPU until the job's wall time ends.

A job *asked for a GPU* when its device setting is ``cuda``/``cuda:N``, or ``auto`` in a rule that
holds a GPU (``resources: gpu``) on a node where a GPU is expected: the scheduler or the user set
``CUDA_VISIBLE_DEVICES`` or Slurm's GPU variables, or ``nvidia-smi`` lists a GPU. ``auto`` on a
machine without any of these (a laptop running the demo) keeps running on CPU.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import torch

#: Set by Slurm (gres/--gpus), by lsmia.gpu_lock, or by hand: the job was given GPUs.
GPU_VARIABLES = ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE")
WHEEL_INDEX = "https://download.pytorch.org/whl"


class CudaUnusableError(RuntimeError):
    """The job asked for a GPU, and torch cannot run CUDA kernels here."""


def require_cuda_if_asked(device: str | None, gpu_rule: bool) -> None:
    """Raise :class:`CudaUnusableError` (with :func:`diagnosis`) when the job asked for a GPU and
    CUDA is unusable; otherwise return at once."""
    device = device or "auto"
    if not (device.startswith("cuda") or (device == "auto" and gpu_rule)):
        return
    problem = cuda_problem()
    if problem and (device != "auto" or gpu_expected()):  # nvidia-smi only when CUDA fails
        where = " in a GPU rule, on a node with a GPU" if device == "auto" else ""
        why = f"device: {device}{where}"
        raise CudaUnusableError(f"this job asked for a GPU ({why}) but cannot use CUDA: {problem}\n"
                                f"{diagnosis()}")


def gpu_expected() -> str | None:
    """Why this node should have a usable GPU (an environment variable or nvidia-smi), or None."""
    for name in GPU_VARIABLES:
        if name in os.environ:
            return f"{name}={os.environ[name]!r}"
    if nvidia_smi_gpus():
        return "nvidia-smi lists a GPU"
    return None


def cuda_problem() -> str | None:
    """Why torch cannot run CUDA kernels here, or None when every visible device can."""
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
            return "CUDA_VISIBLE_DEVICES is empty, so no GPU is visible to this process"
        return "torch.cuda.is_available() is False (no device, or a driver too old for this build)"
    arch_list = torch.cuda.get_arch_list()
    for index in range(torch.cuda.device_count()):
        capability = torch.cuda.get_device_capability(index)
        if not arch_supported(capability, arch_list):
            return (f"device {index} ({torch.cuda.get_device_name(index)}) has compute capability "
                    f"{capability[0]}.{capability[1]}, for which this build has no kernels")
    return None


def arch_supported(capability: tuple[int, int], arch_list: list[str]) -> bool:
    """Whether kernels in ``arch_list`` (``sm_XY``, ``sm_XYa``, ``compute_XY``) run on a device of
    ``capability``: a cubin of the same major and no higher minor, an exact arch-specific cubin, or
    PTX of no higher capability (JIT-compiled)."""
    for arch in arch_list:
        match = re.fullmatch(r"(sm|compute)_(\d+)(\d)([af]?)", arch)
        if not match:
            continue
        kind, major, minor, suffix = match[1], int(match[2]), int(match[3]), match[4]
        if suffix:
            if (major, minor) == tuple(capability):
                return True
        elif kind == "sm" and major == capability[0] and minor <= capability[1]:
            return True
        elif kind == "compute" and (major, minor) <= tuple(capability):
            return True
    return False


def nvidia_smi_gpus() -> list[dict[str, str]]:
    """``name``, ``compute_cap`` and ``driver_version`` of each GPU nvidia-smi lists (none without
    nvidia-smi or a working driver)."""
    if shutil.which("nvidia-smi") is None:
        return []
    fields = ("name", "compute_cap", "driver_version")
    command = ["nvidia-smi", f"--query-gpu={','.join(fields)}", "--format=csv,noheader"]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)
    if result.returncode != 0:
        return []
    return [dict(zip(fields, (part.strip() for part in line.split(","))))
            for line in result.stdout.splitlines() if line.strip()]


def diagnosis() -> str:
    """torch's CUDA build and kernel architectures, the devices and driver, and what to install."""
    lines = [f"  torch {torch.__version__}: torch.version.cuda = {torch.version.cuda}, "
             f"torch.cuda.get_arch_list() = {_arch_list()}"]
    smi = nvidia_smi_gpus()
    for index, gpu in enumerate(smi):
        lines.append(f"  nvidia-smi GPU {index}: {gpu['name']}, compute capability "
                     f"{gpu['compute_cap']}, driver {gpu['driver_version']}")
    if not smi:
        lines.append("  nvidia-smi: no GPU listed (not installed, no driver, or no device)")
    lines.append(f"  CUDA_VISIBLE_DEVICES = {os.environ.get('CUDA_VISIBLE_DEVICES', '(unset)')!r}")
    lines.append(_advice())
    return "\n".join(lines)


def _arch_list() -> list[str]:
    try:
        return torch.cuda.get_arch_list()
    except (RuntimeError, AssertionError):
        return []


def _advice() -> str:
    torch_version = torch.__version__.split("+")[0]
    import torchvision

    vision_version = torchvision.__version__.split("+")[0]
    install = (f"pip install torch=={torch_version} torchvision=={vision_version} "
               f"--index-url {WHEEL_INDEX}/cu126")
    return (
        "What to do: a GPU older than the build's lowest architecture (e.g. Volta sm_70 or Pascal "
        "sm_60 with a CUDA 13 build) or a driver older than its CUDA version needs a CUDA 12 build "
        f"of torch: `{install}` (or cu128; README, 'Older GPUs and drivers'); update the NVIDIA "
        "driver; ask the scheduler for a GPU (resources: gpu=1, profiles/slurm); or set "
        "`device: cpu` in the config to run on CPU on purpose."
    )
