"""A file-system and network sandbox for the cell's two processes (Linux Landlock).

Why: the two-process cell keeps the reference model out of the scoring process's memory,
but a method could still take the disk route: save the model from `fit` and load it while
scored, or load the embedded zoo (or the Hugging Face cache) by name at scoring time, and
decode with it. Landlock lets an unprivileged process give up file and network access for
itself and its children, irrevocably, so the method's code cannot undo it:

- the **fit** process may write only inside its cell's job folder (its `TMPDIR`); it reads
  freely (it has the model anyway);
- the **scoring** process reads only what running Python code needs (the interpreter, the
  import path, system libraries, the method folder) and its own temporary folder, never
  the zoo's model folders, the splits, `/tmp`, or the home folder (the Hugging Face cache);
  it writes only files in its temporary folder (the fitted method arrives on a pipe);
- neither may open or accept TCP connections, or signal processes outside the sandbox.

Where the kernel has no Landlock (before Linux 5.13, or another OS) the cell runs as before
and says so: `sandbox()` returns "none", which the record keeps in `environment`.
What this does not cover: a method folder that ships a copy of the weights, or encodes
them in its source (reviewed, see submissions/README.md), and reading the public splits
during fit (`verify --fresh` catches a memoriser).
"""

from __future__ import annotations

import ctypes
import os
import sys
from collections.abc import Iterable
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2]  # benchmark/: readable by the scorer, but for `hidden_from_scoring`
_CREATE, _ADD_RULE, _RESTRICT = 444, 445, 446  # syscall numbers, the same on every Linux architecture
_PATH_BENEATH, _NO_NEW_PRIVS = 1, 38

# Access rights (include/uapi/linux/landlock.h), by the ABI version that added them.
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
REMOVE_DIR, REMOVE_FILE, MAKE_CHAR, MAKE_DIR, MAKE_REG = 1 << 4, 1 << 5, 1 << 6, 1 << 7, 1 << 8
MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = 1 << 9, 1 << 10, 1 << 11, 1 << 12
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, 3
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1}
_NET_TCP = 0b11  # bind, connect (ABI 4)
_SCOPES = 0b11  # abstract unix sockets, signals (ABI 6)
FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE  # the rights a rule on a single file may grant
READ = EXECUTE | READ_FILE | READ_DIR
WRITE = WRITE_FILE | TRUNCATE | REMOVE_DIR | REMOVE_FILE | MAKE_DIR | MAKE_REG | MAKE_SOCK | MAKE_FIFO | MAKE_SYM | REFER


class _Ruleset(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 where there is none."""
    if not sys.platform.startswith("linux"):
        return 0
    version = _libc().syscall(_CREATE, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(int(version), 0)


def _handled(abi: int) -> int:
    return _FS_BY_ABI.get(abi, _FS_BY_ABI[3])


def restrict(rules: Iterable[tuple[Path, int]], handled_fs: int) -> str:
    """Allow only `rules` (path, rights) among the `handled_fs` rights, no TCP and no signals
    outside, for this process and its children from now on. Returns "landlock N" or "none"."""
    abi = abi_version()
    if abi == 0:
        return "none"
    libc = _libc()
    handled = handled_fs & _handled(abi)
    attr = _Ruleset(handled, _NET_TCP if abi >= 4 else 0, _SCOPES if abi >= 6 else 0)
    size = ctypes.sizeof(_Ruleset) if abi >= 6 else (16 if abi >= 4 else 8)
    fd = libc.syscall(_CREATE, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for path, rights in rules:
            _add(libc, fd, path, rights & handled)
        if libc.prctl(_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or libc.syscall(_RESTRICT, fd, ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(fd)
    return f"landlock {abi}"


def _add(libc: ctypes.CDLL, ruleset: int, path: Path, rights: int) -> None:
    try:
        target = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have needs no rule
    try:
        if not path.is_dir():
            rights &= FILE_RIGHTS
        rule = _PathBeneath(rights, target)
        if rights and libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(target)


def fit_rules(jobdir: Path) -> list[tuple[Path, int]]:
    """Fit writes only in its job folder (and to /dev/null, and the GPU's device files, which
    CUDA opens read-write under `--device cuda`); reading is not restricted."""
    gpus = sorted(Path("/dev").glob("nvidia*"))
    return [(jobdir, WRITE), (Path("/dev/null"), WRITE_FILE), *((g, WRITE_FILE) for g in gpus)]


def score_rules(jobdir: Path, method_folder: Path, hidden: Iterable[Path]) -> list[tuple[Path, int]]:
    """What the scoring process may read and write (see the module docstring).

    `hidden` are folders that an allowed folder contains but that must stay out of reach
    (the zoo's model folders, the splits): the folders above them are allowed child by child.
    """
    hidden = {p.resolve() for p in hidden}
    roots = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix) if p}
    # Site folders outside the prefixes (a user site), but not the working folder that `-m` puts
    # first on the path: a checkout's runs/ may hold trained models.
    roots |= {Path(p).resolve() for p in sys.path if p and Path(p).name in ("site-packages", "dist-packages")}
    roots |= {PACKAGE} | {Path(p) for p in ("/usr", "/lib", "/lib64", "/etc", "/proc/self", "/proc/cpuinfo",
                                            "/proc/meminfo", "/proc/stat", "/sys/devices/system", "/sys/fs/cgroup",
                                            "/dev/urandom")}
    rules = [rule for root in sorted(roots) for rule in _allowed_tree(root, hidden, READ)]
    rules += [(method_folder.resolve(), READ), (jobdir, READ | WRITE),
              (Path("/dev/null"), READ_FILE | WRITE_FILE)]
    return rules


def _allowed_tree(root: Path, hidden: set[Path], rights: int) -> list[tuple[Path, int]]:
    """`root` whole, or, when a hidden folder lies inside it, each of its children but that one.

    A carved folder keeps READ_DIR (imports list it; the hidden folders' names are no secret,
    their files stay unreadable)."""
    if root in hidden:
        return []
    if not any(root in h.parents for h in hidden) or not root.is_dir():
        return [(root, rights)]
    children = [rule for child in sorted(root.iterdir()) for rule in _allowed_tree(child.resolve(), hidden, rights)]
    return [(root, rights & READ_DIR), *children]


def hidden_from_scoring() -> list[Path]:
    """The zoo's model folders and the splits: what a scoring process must never read."""
    zoo = PACKAGE / "zoo"
    return [*(p for p in zoo.iterdir() if p.is_dir() and p.name != "__pycache__"), PACKAGE / "splits"]
