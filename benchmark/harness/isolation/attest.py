"""Attestation: a worker proves from inside, before any method code runs, that its
restrictions took effect, and says which.

Why: a record used to say `landlock 7`, the kernel's ABI version, even when a `.pth` file
planted in site-packages had replaced the sandbox with a no-op. What a record says now is
what the worker *observed*: a forbidden write failed, its network, IPC and PID namespaces
are not the supervisor's, its keyrings are not the supervisor's. The supervisor (outside,
trusted) passes its own namespace inodes and keyring ids; the worker compares.

    "bwrap+landlock7; denied: fs,net,ipc,keyring,pid"        every restriction verified
    "landlock7; denied: fs; open: net,ipc,keyring,pid"       no bubblewrap on this machine

Under bubblewrap an open restriction fails the cell (`AttestationError`), unless a mutation
test removed it on purpose (`bwrap.weakened`).
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

KEYCTL_GET_KEYRING_ID, KEYCTL_JOIN_SESSION_KEYRING = 0, 1
KEY_SPEC_SESSION_KEYRING, KEY_SPEC_USER_KEYRING = -3, -4
_SYS_KEYCTL = {"x86_64": 250, "aarch64": 219}
CHECKS = ("fs", "net", "ipc", "keyring", "pid")


class AttestationError(Exception):
    """A restriction that should hold did not: the cell must not run method code."""


def namespaces() -> dict[str, int]:
    """This process's namespace inodes (what differs between a sandbox and its supervisor)."""
    out = {}
    for ns in ("user", "pid", "net", "ipc", "uts"):
        try:
            out[ns] = os.stat(f"/proc/self/ns/{ns}").st_ino
        except OSError:
            out[ns] = -1
    return out


def _keyctl(*args: int) -> int:
    number = _SYS_KEYCTL.get(os.uname().machine)
    if number is None:
        return -1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return int(libc.syscall(number, *(ctypes.c_long(a) for a in args)))


def keyrings() -> dict[str, int]:
    """The ids of this process's session and user keyrings (-1 where there is none)."""
    return {"session": _keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0),
            "user": _keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_USER_KEYRING, 0)}


def host_identity(sandboxed: bool) -> dict:
    """What the supervisor passes to its workers: its namespaces and keyrings, and the layers it started."""
    from benchmark.harness.isolation.bwrap import weakened

    return {"ns": namespaces(), "keyrings": keyrings(), "bwrap": sandboxed, "weakened": sorted(weakened())}


def join_private_keyring() -> None:
    """A fresh anonymous session keyring: nothing another process added to ours is possessed."""
    _keyctl(KEYCTL_JOIN_SESSION_KEYRING, 0)


@dataclass
class Attestation:
    layers: list[str]
    denied: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = "+".join(self.layers) or "none"
        if self.denied:
            text += "; denied: " + ",".join(self.denied)
        if self.open:
            text += "; open: " + ",".join(self.open)
        return text


def _write_fails(folder: Path) -> bool:
    probe = folder / f".onionbench-attest-{os.getpid()}"
    try:
        with open(probe, "x"):
            pass
    except OSError:
        return True
    probe.unlink(missing_ok=True)
    return False


def _read_fails(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError:
        return True
    return False


def _only_loopback() -> bool:
    try:
        return {name for _, name in socket.if_nameindex()} <= {"lo"}
    except OSError:
        return True


def attest(host: dict, *, landlock: str, no_write: Sequence[Path], no_read: Sequence[Path] = ()) -> Attestation:
    """Check every restriction from inside; raise AttestationError if bwrap ran and one is open."""
    mine, keys = namespaces(), keyrings()
    site = [Path(p) for p in sys.path if p and Path(p).is_dir() and Path(p).name in ("site-packages", "dist-packages")]
    held = {
        "fs": all(_write_fails(p) for p in [*no_write, *site] if p.is_dir()) and all(_read_fails(p) for p in no_read),
        "net": mine["net"] != host["ns"]["net"] and _only_loopback(),
        "ipc": mine["ipc"] != host["ns"]["ipc"],
        "keyring": all(keys[k] != host["keyrings"][k] or keys[k] < 0 for k in keys),
        "pid": mine["pid"] != host["ns"]["pid"],
    }
    layers = (["bwrap"] if host["bwrap"] else []) + ([landlock.replace(" ", "")] if landlock != "none" else [])
    out = Attestation(layers, [c for c in CHECKS if held[c]], [c for c in CHECKS if not held[c]])
    unexpected = [c for c in out.open if c not in _allowed_open(host)]
    if host["bwrap"] and unexpected:
        raise AttestationError(f"sandbox attestation failed: {', '.join(unexpected)} not isolated ({out})")
    return out


def _allowed_open(host: dict) -> set[str]:
    """The checks a mutation test may leave open (the restriction it removed, and what that entails)."""
    weak = set(host.get("weakened", []))
    entails = {"net": {"net"}, "ipc": {"ipc"}, "pid": {"pid"}, "user": {"keyring"}, "keyring": {"keyring"},
               "ro": {"fs"}, "tmp": set(), "dev": set()}
    return {c for w in weak for c in entails.get(w, set())}
