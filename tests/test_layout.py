"""The package layout: no import cycles, and the harness never imports a method by name."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "benchmark"


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at module level or lazily inside a function (a lazy cycle is still a cycle
    of responsibilities)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.startswith("benchmark")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in _imports(path) if m in modules and m != name} for name, path in modules.items()}


def test_there_are_no_import_cycles():
    graph, state, cycles = _graph(), {}, []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_harness_never_imports_baselines_or_submissions():
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.split(".")[0] in ("baselines", "submissions") for n in names), path


def test_no_layer_imports_upward():
    """docs/ARCHITECTURE.md's layers: the harness and the zoo sit below the board and the command line."""
    below = ("benchmark.harness", "benchmark.zoo", "benchmark.data", "benchmark.task", "benchmark.errors",
             "benchmark.records", "benchmark.catalogue", "benchmark.hashing", "benchmark.hardware")
    above = ("benchmark.board", "benchmark.cli", "benchmark.studies", "benchmark.audit")
    for name, deps in _graph().items():
        if name.startswith(below):
            upward = sorted(d for d in deps if d.startswith(above))
            assert not upward, f"{name} imports {upward}: move the shared code down, or the caller up"
        if name.startswith("benchmark.board"):  # the board is a function of the records, not of a study's code
            studies = sorted(d for d in deps if d.startswith(("benchmark.studies", "benchmark.audit")))
            assert not studies, f"{name} imports {studies}: the page links a study's figures by name only"
            # ... nor of the harness: it reads records through the ground floor (`benchmark.records`)
            harness = sorted(d for d in deps if d.startswith("benchmark.harness"))
            assert not harness, f"{name} imports {harness}: the board reads records via benchmark.records"
        if name.startswith("benchmark.zoo"):  # the models know nothing of the methods that score them
            harness = sorted(d for d in deps if d.startswith("benchmark.harness"))
            assert not harness, f"{name} imports {harness}: the zoo sits below the harness"


def test_errors_become_one_line_through_one_helper():
    """Issue 32: the five copies of "the first line of an error" are one (`benchmark.errors`)."""
    import re

    from benchmark.errors import OnionbenchError, first_line, one_line

    copies = [p for p in PACKAGE.rglob("*.py") if p.name != "errors.py"
              and re.search(r"str\((err|error|e|exc)\)[^\n]*splitlines\(\)", p.read_text())]
    assert not copies, f"use benchmark.errors.first_line / one_line in {copies}"
    assert first_line(ValueError("\n  shape mismatch  \nat line 2")) == "shape mismatch"
    assert first_line(ValueError(""), "ValueError") == "ValueError"
    assert one_line(ValueError("bad\nmore")) == "ValueError: bad"
    assert one_line(OnionbenchError("fix it like so")) == "fix it like so"  # ours: written for the user
    assert len(one_line(ValueError("x" * 900))) == 500


def test_every_subpackage_ships_in_the_wheel():
    """pyproject.toml lists packages by hand: a new subpackage left out would import in a checkout
    and fail in an installed onionbench (benchmark.studies was missing until issue 32's move)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {_module_name(p) for p in PACKAGE.rglob("__init__.py")}
    assert not found - listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_records_name_the_checkout_they_were_scored_from():
    """`harness_commit` finds the repository from the records module's own place; after the
    module moved to the ground floor a wrong depth would write "unknown" into every record."""
    import subprocess

    from benchmark.records import harness_commit

    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:  # an installed copy outside a checkout: nothing to compare
        return
    assert harness_commit().removesuffix("-dirty") == head.stdout.strip()


def _declared_all(init: Path) -> list[str] | None:
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return list(ast.literal_eval(node.value))
    return None


def test_every_package_declares_its_public_modules():
    """Each package's `__all__` names exactly its public modules and subpackages (or, for a module-like
    package such as the CLI, names it defines), so the public surface is written down and kept current."""
    for init in sorted(PACKAGE.rglob("__init__.py")):
        names = _declared_all(init)
        assert names is not None, f"{init.relative_to(ROOT)} has no __all__"
        folder = init.parent
        children = {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")} | {
            p.name for p in folder.iterdir() if (p / "__init__.py").is_file()}
        defined = set()
        for node in ast.parse(init.read_text()).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                defined.add(node.name)
            elif isinstance(node, ast.ImportFrom):
                defined |= {alias.asname or alias.name for alias in node.names}
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                defined |= {t.id for t in targets if isinstance(t, ast.Name)}
        if set(names) <= defined - {"__all__"}:
            continue  # a module-like package (the CLI, the track registry) exports what it defines
        assert set(names) == children, (f"{init.relative_to(ROOT)}: __all__ lacks {sorted(children - set(names))}, "
                                        f"names no module {sorted(set(names) - children)}")
