"""What a sealed cell's record says on this machine (`benchmark.harness.isolation.attest`)."""

from __future__ import annotations

from benchmark.harness.isolation import bwrap
from benchmark.harness.isolation.sandbox import abi_version

SEALED = bwrap.unavailable() is None


def expected_sandbox() -> str:
    """The attestation every worker of a cell gives here, bubblewrap or not."""
    landlock = [f"landlock{abi_version()}"] if abi_version() else []
    if SEALED:
        return "+".join(["bwrap", *landlock]) + "; denied: fs,net,ipc,keyring,pid"
    denied = "fs" if landlock else ""
    opened = "net,ipc,keyring,pid" if landlock else "fs,net,ipc,keyring,pid"
    return ("+".join(landlock) or "none") + (f"; denied: {denied}" if denied else "") + f"; open: {opened}"
