"""Method folders: `method.toml` + `method.py`, discovered under `baselines/` and `submissions/`.

`method.toml`::

    name = "onion"                    # unique; lowercase letters, digits and dashes
    description = "..."
    authors = ["..."]
    url = "https://..."
    hypothesis = "onion"              # linear | onion | other | floor
    entry = "method.py:OnionMethod"   # file:Class inside the folder
    interchange_reads = true          # optional, open methods: does `interchange` call `read`?
    [params]                          # default keyword arguments of the class
    steps = 1500
    [check_params]                    # optional: overrides used by `onionbench check`
    steps = 50

The harness never imports from `baselines/` or `submissions/` by name; it loads each
folder's entry file under a private module name.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import inspect
import re
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from benchmark.errors import OnionbenchError

# reference: a ceiling shown, never ranked; none: no hypothesis (the open board only)
HYPOTHESES = ("linear", "onion", "other", "floor", "reference", "none")
REQUIRED = ("name", "description", "authors", "url", "hypothesis", "entry")
OPTIONAL = ("params", "check_params")  # tables of keyword arguments
FLAGS = ("interchange_reads",)  # optional statements (bool)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
METHOD_ROOTS = ("baselines", "submissions")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")  # a method name: also a results folder, so no path parts


class SubmissionError(OnionbenchError):
    """A method folder is malformed; the message says what to fix."""


@dataclass(frozen=True)
class MethodSpec:
    """A parsed method folder."""

    name: str
    folder: Path
    description: str
    authors: tuple[str, ...]
    url: str
    hypothesis: str
    entry: str
    params: dict = field(default_factory=dict)
    check_params: dict = field(default_factory=dict)  # overrides for `onionbench check` (keep it seconds)
    # An open method's statement: does its `interchange` call its own `read`? (None: not stated.)
    # A declared method's forms say it. An open method without `interchange` gets the harness's
    # read-then-write default, which reads, but its records say None unless method.toml states
    # it (no committed open method is in that case; see the closing note of session 28).
    interchange_reads: bool | None = None

    @property
    def is_baseline(self) -> bool:
        return self.folder.parent.name in ("baselines", "onionbench_baselines")

    def source_sha256(self) -> str:
        """sha256 over the folder's files (path and bytes), so any code change is seen."""
        return folder_sha256(self.folder)

    def load_class(self) -> type:
        """Import the entry file and return its class, with a one-line error on any failure."""
        file_name, class_name = self.entry.split(":", 1)
        path = self.folder / file_name
        module_name = f"onionbench_method_{re.sub(r'[^a-z0-9]', '_', self.name)}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise SubmissionError(f"{path}: cannot be imported as a Python file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as err:
            raise SubmissionError(f"{path}:{err.lineno}: syntax error: {err.msg}") from err
        except Exception as err:  # the submission's import-time code failed
            raise SubmissionError(f"{path}: importing it raised {type(err).__name__}: {err}") from err
        cls = getattr(module, class_name, None)
        if not inspect.isclass(cls):
            found = [n for n, obj in vars(module).items() if inspect.isclass(obj) and obj.__module__ == module_name]
            raise SubmissionError(f"{path}: no class {class_name!r} (entry = {self.entry!r}); classes defined there: "
                                  f"{', '.join(found) or 'none'}")
        return cls

    def instantiate(self, overrides: dict | None = None) -> object:
        """A fresh, unfitted method with the folder's default params (plus overrides)."""
        cls = self.load_class()
        params = {**self.params, **(overrides or {})}
        try:
            return cls(**params)
        except TypeError as err:
            raise SubmissionError(f"{self.folder / 'method.toml'}: [params] do not match "
                                  f"{cls.__name__}.__init__: {err}") from err


def folder_sha256(folder: Path) -> str:
    """Content hash of a folder's regular files, ignoring caches."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(folder).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def load_spec(folder: Path | str) -> MethodSpec:
    """Parse and validate `folder/method.toml`."""
    folder = Path(folder).resolve()
    toml_path = folder / "method.toml"
    if not toml_path.is_file():
        raise SubmissionError(f"{folder}: no method.toml; a method folder holds method.toml and method.py "
                              "(see submissions/README.md)")
    try:
        meta = tomllib.loads(toml_path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SubmissionError(f"{toml_path}: invalid TOML: {err}") from err
    for key in meta:  # a typo such as [parms] would otherwise drop every parameter silently
        if key not in (*REQUIRED, *OPTIONAL, *FLAGS):
            close = difflib.get_close_matches(key, [*REQUIRED, *OPTIONAL, *FLAGS], n=1, cutoff=0.5)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SubmissionError(f"{toml_path}: unknown key {key!r}{hint} "
                                  f"(keys: {', '.join(REQUIRED + OPTIONAL + FLAGS)})")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise SubmissionError(f"{toml_path}: missing key(s) {', '.join(missing)}; required: {', '.join(REQUIRED)}")
    _validate(meta, toml_path, folder)
    return MethodSpec(name=meta["name"], folder=folder, description=meta["description"],
                      authors=tuple(meta["authors"]), url=meta["url"], hypothesis=meta["hypothesis"],
                      entry=meta["entry"], params=dict(meta.get("params", {})),
                      check_params=dict(meta.get("check_params", {})),
                      interchange_reads=meta.get("interchange_reads"))


def _validate(meta: dict, toml_path: Path, folder: Path) -> None:
    if not isinstance(meta["name"], str) or not NAME.match(meta["name"]):
        raise SubmissionError(f"{toml_path}: name {meta['name']!r} must be lowercase letters, digits and dashes")
    if meta["hypothesis"] not in HYPOTHESES:
        raise SubmissionError(f"{toml_path}: hypothesis {meta['hypothesis']!r} is not one of {', '.join(HYPOTHESES)}")
    if not isinstance(meta["authors"], list) or not all(isinstance(a, str) for a in meta["authors"]):
        raise SubmissionError(f"{toml_path}: authors must be a list of strings")
    entry = meta["entry"]
    if not isinstance(entry, str) or entry.count(":") != 1:
        raise SubmissionError(f"{toml_path}: entry {entry!r} must look like 'method.py:ClassName'")
    if not (folder / entry.split(":")[0]).is_file():
        raise SubmissionError(f"{toml_path}: entry file {entry.split(':')[0]!r} does not exist in {folder}")
    for table in OPTIONAL:
        if not isinstance(meta.get(table, {}), dict):
            raise SubmissionError(f"{toml_path}: [{table}] must be a table of keyword arguments")
    if not isinstance(meta.get("interchange_reads", False), bool):
        raise SubmissionError(f"{toml_path}: interchange_reads must be true or false (does your interchange call read?)")
    unknown = sorted(set(meta.get("check_params", {})) - set(meta.get("params", {})))
    if unknown:
        raise SubmissionError(f"{toml_path}: [check_params] sets {', '.join(unknown)}, which [params] does not "
                              "have; [check_params] may only override [params]")


def method_roots(root: Path | None = None) -> list[Path]:
    """Where methods are discovered: root/baselines and root/submissions of a checkout; from an
    installed wheel, the shipped baselines and ./submissions of the working directory."""
    if root is None and not (PROJECT_ROOT / "baselines").is_dir():
        import importlib.util

        shipped = importlib.util.find_spec("onionbench_baselines")
        baselines = Path(shipped.submodule_search_locations[0]) if shipped and shipped.submodule_search_locations \
            else Path.cwd() / "baselines"
        return [baselines, Path.cwd() / "submissions"]
    base = root or PROJECT_ROOT
    return [base / sub for sub in METHOD_ROOTS]


def method_folders(root: Path | None = None) -> list[Path]:
    """Every folder with a method.toml under the method roots, root by root, sorted by name."""
    return [folder for where in method_roots(root)
            for folder in sorted(p for p in where.glob("*") if (p / "method.toml").exists())]


def discover(root: Path | None = None) -> dict[str, MethodSpec]:
    """Every method folder under the method roots (see `method_roots`), by name.

    A folder that fails to parse raises (naming the folder); two folders with one name raise.
    """
    found: dict[str, MethodSpec] = {}
    for folder in method_folders(root):
        spec = load_spec(folder)
        if spec.name in found:
            raise SubmissionError(f"method name {spec.name!r} is used by both {found[spec.name].folder} and "
                                  f"{folder}; rename one in its method.toml")
        found[spec.name] = spec
    return found


def readable_methods(root: Path | None = None) -> tuple[dict[str, MethodSpec], dict[str, str]]:
    """Every method folder that parses, by name, and why any other name cannot be trusted.

    The second mapping names each folder that fails to parse (under its directory's name,
    the only name it has) and each name two folders use, with a one-line message. Unlike
    `discover` it never raises: one broken submission must not stop the board, `verify` or
    `score --fitted` for everyone else; callers refuse only what touches a refused name.
    """
    found: dict[str, MethodSpec] = {}
    refused: dict[str, str] = {}
    for folder in method_folders(root):
        try:
            spec = load_spec(folder)
        except SubmissionError as err:
            refused[folder.name] = str(err)
            continue
        if spec.name in found or spec.name in refused:
            refused[spec.name] = f"method name {spec.name!r} is used twice (again in {folder}); rename one"
            found.pop(spec.name, None)
            continue
        found[spec.name] = spec
    return found, refused


def source_hashes(root: Path | None = None) -> tuple[dict[str, str], list[str]]:
    """Every readable method folder's source sha256 by name, and one message per folder that
    fails to parse or name used twice (see `readable_methods`; the leaderboard is built even
    when one submission's folder is broken: a broken folder must not hide the other rows)."""
    found, refused = readable_methods(root)
    return {name: spec.source_sha256() for name, spec in found.items()}, list(refused.values())


def resolve(name_or_folder: str, root: Path | None = None) -> MethodSpec:
    """A folder path, or the name of a discovered method."""
    path = Path(name_or_folder)
    if path.is_dir():
        return load_spec(path)
    methods = discover(root)
    if name_or_folder not in methods:
        raise SubmissionError(f"no method folder or method named {name_or_folder!r}; known methods: "
                              f"{', '.join(sorted(methods)) or 'none'}")
    return methods[name_or_folder]
