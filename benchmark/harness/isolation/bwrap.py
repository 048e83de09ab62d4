"""Namespaces for every process that runs method code, from bubblewrap (`bwrap`).

Why bubblewrap: Landlock (`sandbox.py`) mediates files and TCP, but not kernel objects
(SysV shared memory, POSIX message queues, keyrings), UDP or unix sockets, nor processes
that outlive their parent. Those routes carried the model's weights from fit to scoring.
Linux namespaces close them as a class: a worker gets its own user, PID, network, IPC,
UTS and cgroup namespaces, a private /tmp, and a filesystem of read-only binds. bwrap is
the unprivileged sandbox Flatpak uses (Debian/Ubuntu package `bubblewrap`, Fedora
`bubblewrap`); it needs unprivileged user namespaces (on by default on Debian 11+, Ubuntu
and Fedora; Ubuntu 24.04's AppArmor restriction needs `kernel.apparmor_restrict_unprivileged_userns=0`
or a profile for bwrap).

What the worker sees (`view`): the interpreter and its prefixes, the site folders, system
libraries, the `benchmark` package with the zoo's model folders and the splits replaced by
empty folders (scoring) or left readable (fit and `check`, which have the model anyway),
the method folder, all read-only; an empty private /tmp; a fresh /proc and a minimal /dev.
When the worker exits, its PID namespace goes with it: the kernel kills every process in
it, so nothing fit started can outlive fit.

`ONIONBENCH_SANDBOX_WEAKEN` (comma-separated: user, pid, net, ipc, uts, tmp, dev, ro,
landlock, keyring)
removes one namespace, bind or layer. It exists for the mutation tests of the cheat
gallery (a test must fail when its defence is removed); each worker's attestation then
reports that restriction as open, and the leaderboard does not rank such records.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]
NAMESPACES = ("user", "pid", "net", "ipc", "uts")
WEAKEN_ENV = "ONIONBENCH_SANDBOX_WEAKEN"
INSIDE_TMP = "/tmp"  # the worker's private, empty tmpfs (its TMPDIR)


def worker_argv(kind: str) -> list[str]:
    """`python -I` running `benchmark.harness.isolation.worker KIND` from the same `benchmark` package as
    this process: -I ignores PYTHONPATH, the working folder and the user site, so the package's
    own folder is put on the path explicitly (a checkout run with PYTHONPATH works too)."""
    boot = (f"import sys; sys.path.insert(0, {str(PACKAGE.parent)!r}); sys.argv[1:] = [{kind!r}]; "
            "from benchmark.harness.isolation.worker import main; main()")
    return [sys.executable, "-I", "-c", boot]


def weakened() -> frozenset[str]:
    """The restrictions a mutation test removed (empty in every real run)."""
    return frozenset(w.strip() for w in os.environ.get(WEAKEN_ENV, "").split(",") if w.strip())


@functools.lru_cache(maxsize=1)
def unavailable() -> str | None:
    """None when bwrap can build a sandbox here; else a one-line reason and how to fix it."""
    if not sys.platform.startswith("linux"):
        return "namespaces need Linux"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap; Fedora: dnf install bubblewrap)"
    probe = subprocess.run([exe, "--unshare-all", "--unshare-user", "--die-with-parent", "--ro-bind", "/", "/",
                            "--", "/bin/true"], capture_output=True, text=True, timeout=30)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        return f"bwrap cannot create user namespaces here ({why}); enable unprivileged user namespaces"
    return None


def _roots() -> list[Path]:
    """Folders any Python worker needs to read: interpreter, prefixes, site folders, system libraries."""
    paths = {Path(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, Path(sys.executable).parent) if p}
    paths.add(Path(os.path.realpath(sys.executable)).parent.parent)
    paths |= {Path(p) for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages")}
    paths |= {Path(p) for p in ("/usr", "/etc", "/opt")}
    return sorted({p for p in paths if p.exists()})


def _outermost(paths: list[Path]) -> list[Path]:
    """Drop paths inside another listed path (one bind covers them)."""
    resolved = sorted({p.resolve() for p in paths}, key=lambda p: len(p.parts))
    out: list[Path] = []
    for p in resolved:
        if not any(p == q or q in p.parents for q in out):
            out.append(p)
    return out


def command(argv: list[str], *, readable: Sequence[Path], hide: Sequence[Path] = (), gpu: bool = False,
            env: dict[str, str] | None = None) -> list[str]:
    """`argv` wrapped in bwrap: the roots, `readable` and the package read-only, `hide` emptied."""
    weak = weakened()
    out = [shutil.which("bwrap") or "bwrap", "--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    out += [f"--unshare-{ns}" for ns in NAMESPACES if ns not in weak]
    out += ["--unshare-cgroup-try"]
    if "user" not in weak:
        out += ["--uid", "65534", "--gid", "65534"]
    # /tmp first: a method folder or model module under /tmp is bound on top of the private tmpfs
    out += ["--proc", "/proc"] + (["--dev-bind", "/dev", "/dev"] if "dev" in weak else ["--dev", "/dev"])
    out += ["--bind", "/tmp", INSIDE_TMP] if "tmp" in weak else ["--perms", "1777", "--tmpfs", INSIDE_TMP]
    bind = "--bind" if "ro" in weak else "--ro-bind"
    for path in _outermost([*_roots(), PACKAGE, *readable]):
        out += [bind, str(path), str(path)]
    for name in ("lib", "lib64", "bin", "sbin"):
        target = Path("/") / name
        if target.is_symlink():
            out += ["--symlink", os.readlink(target), str(target)]
        elif target.is_dir():
            out += ["--ro-bind", str(target), str(target)]
    for path in hide:
        if path.is_dir():
            out += ["--tmpfs", str(path), "--remount-ro", str(path)]
        elif path.exists():
            out += ["--ro-bind", "/dev/null", str(path)]
    if gpu:  # CUDA opens its device files read-write and reads the driver's /proc and /sys entries
        out += [arg for dev in sorted(Path("/dev").glob("nvidia*")) for arg in ("--dev-bind", str(dev), str(dev))]
        out += ["--ro-bind", "/sys", "/sys"]
        if Path("/proc/driver/nvidia").exists():
            out += ["--ro-bind", "/proc/driver/nvidia", "/proc/driver/nvidia"]
    for key, value in {"TMPDIR": INSIDE_TMP, "HOME": INSIDE_TMP, "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                       **_passed_env(), **(env or {})}.items():
        out += ["--setenv", key, value]
    out += ["--chdir", INSIDE_TMP, "--", *argv]
    return out


def _passed_env() -> dict[str, str]:
    """Thread counts and CUDA visibility carry over; nothing else of the caller's environment does."""
    keep = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "CUBLAS_WORKSPACE_CONFIG")
    return {k: os.environ[k] for k in keep if k in os.environ}


def module_root(module_name: str) -> Path | None:
    """The folder to put on sys.path so that `module_name` imports (None for built-ins and
    modules inside the readable roots already)."""
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if not file:
        return None
    root = Path(file).resolve().parents[len(module_name.split(".")) - 1]
    inside = Path(file).resolve()
    if any(r in inside.parents for r in _outermost([*_roots(), PACKAGE])):
        return None  # importable in the sandbox as it is
    return root
