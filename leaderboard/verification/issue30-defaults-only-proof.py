"""Proof that a method's source changed only in its class defaults (issue 30, session 37).

Why: `test_a_baselines_class_defaults_are_its_method_toml` makes a class's __init__ defaults
follow method.toml, so moving a default edits method.py as well, and that makes the method's
learning curves history (`code_sha256`). But a curve point never uses a class default: it is
fitted with every [params] value passed explicitly (`learning_curves.score_on_valid`). So if
(1) the two sources parse to the same syntax tree once the __init__ defaults and the docstrings
are blanked, (2) every default that moved is a [params] key, and (3) nothing in the folder reads
`__doc__`, no curve point can differ, and the curves may be re-keyed (`benchmarks/rekey_studies.py`). Records are not re-keyed; they are re-scored.

    python leaderboard/verification/issue30-defaults-only-proof.py OLD_COMMIT METHOD...
"""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _blank_defaults(source: str) -> tuple[str, dict[str, str]]:
    """The syntax tree's dump with every __init__ default and every docstring removed, and
    those defaults by name."""
    tree = ast.parse(source)
    defaults: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node) is not None:
            node.body[0] = ast.Pass()
        if isinstance(node, ast.FunctionDef) and node.name == "__init__":
            args = node.args
            positional = args.posonlyargs + args.args
            for arg, value in zip(positional[len(positional) - len(args.defaults):], args.defaults):
                defaults[arg.arg] = ast.unparse(value)
            for arg, value in zip(args.kwonlyargs, args.kw_defaults):
                if value is not None:
                    defaults[arg.arg] = ast.unparse(value)
            args.defaults, args.kw_defaults = [], [None] * len(args.kw_defaults)
    return ast.dump(tree), defaults


def main(old: str, methods: list[str]) -> int:
    failed = 0
    for name in methods:
        folder = ROOT / "baselines" / name
        params = tomllib.loads((folder / "method.toml").read_text())["params"]
        for path in sorted(folder.glob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            before = subprocess.run(["git", "show", f"{old}:{rel}"], cwd=ROOT, capture_output=True, text=True,
                                    check=True).stdout
            tree_old, def_old = _blank_defaults(before)
            tree_new, def_new = _blank_defaults(path.read_text())
            moved = {k: (def_old.get(k), def_new.get(k)) for k in def_old.keys() | def_new.keys()
                     if def_old.get(k) != def_new.get(k)}
            same_tree = tree_old == tree_new
            outside = sorted(k for k in moved if k not in params)
            reads_doc = "__doc__" in path.read_text()
            ok = same_tree and not outside and not reads_doc
            failed += not ok
            print(f"{rel}: syntax tree without __init__ defaults and docstrings {'IDENTICAL' if same_tree else 'DIFFERS'}; "
                  f"reads __doc__: {reads_doc}; "
                  f"defaults moved {moved or 'none'}; moved outside [params]: {outside or 'none'} -> "
                  f"{'PROVEN' if ok else 'NOT PROVEN'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
