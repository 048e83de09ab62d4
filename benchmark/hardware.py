"""A one-line description of the machine, for model cards and result records."""

from __future__ import annotations

import os
import platform

import torch


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, or the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_summary() -> str:
    """E.g. 'Intel Xeon ... (x86_64), 2 cores, torch 2.13.0+cpu, 2 threads'."""
    return (f"{cpu_model()} ({platform.machine()}), {os.cpu_count()} cores, torch {torch.__version__}, "
            f"{torch.get_num_threads()} threads")
