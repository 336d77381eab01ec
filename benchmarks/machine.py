"""The machine line every benchmark prints with its table."""

import platform

import torch


def machine() -> str:
    cpu = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    gpu = f"; {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return f"{platform.node()} ({cpu}{gpu}), torch {torch.__version__}"
