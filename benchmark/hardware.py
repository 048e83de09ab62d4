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


def check_device(name: str) -> str:
    """`name` if this machine can run torch on it, else OnionbenchError saying what to do instead.

    Why here: `--device` is checked once, on the command line, rather than failing every
    cell with the same error (a cluster's driver has no GPU of its own: `--ray` skips this).
    """
    from benchmark.errors import OnionbenchError

    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise OnionbenchError(f"--device {name}: not a torch device ({err}); use cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise OnionbenchError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA GPU; drop --device "
                              "(the CPU is the default) or run on a machine with one")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise OnionbenchError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type not in ("cpu", "cuda") and not getattr(torch, device.type).is_available():
        raise OnionbenchError(f"--device {name}: torch cannot use {device.type} on this machine")
    return name
