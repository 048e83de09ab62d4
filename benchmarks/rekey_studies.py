"""Re-key a method's committed study files to its current source, after a proof that no fitted
number can change.

Why: learning curves (keyed by `code_sha256`), long runs and the bigram study (keyed by
`method_sha256`) become history when their method's source changes, as they must. A change
that moves code without changing a single fitted tensor (shown by a byte-for-byte comparison
of old and new fits, committed as a log under leaderboard/verification/) would otherwise throw
away hours of CPU. This script re-keys only files whose stored hash equals the old one named on
the command line (history stays history), and appends a `rekeyed` entry naming the old hash,
the reason and the log. Records are never re-keyed: they are sealed and get re-scored.

    python benchmarks/rekey_studies.py linear-das --from-method OLD --from-code OLD --log PATH --why TEXT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from benchmark.harness.defaults import PROJECT_ROOT
from benchmark.harness.submission import resolve
from benchmark.records import write_atomic
from benchmark.studies.learning_curves import code_sha256

LEADERBOARD = PROJECT_ROOT / "leaderboard"


def _note(obj: dict, entry: dict) -> None:
    """Append `entry` to obj's re-key history (a single earlier entry becomes the list's first)."""
    before = obj.get("rekeyed")
    obj["rekeyed"] = ([] if before is None else before if isinstance(before, list) else [before]) + [entry]


def rekey(method: str, from_method: str, from_code: str | None, log: str, why: str,
          root: Path = LEADERBOARD) -> list[Path]:
    """Re-key every study file of `method` that carries the old hashes; the paths changed."""
    if not (PROJECT_ROOT / log).is_file():
        raise SystemExit(f"{log}: no such file; commit the proof's log first, then name it here")
    spec = resolve(method)
    new_method, new_code = spec.source_sha256(), code_sha256(spec)
    entry = {"from_method_sha256": from_method, "why": why, "log": log}
    changed = []
    for path in sorted((root / "curves" / method).glob("*.json")):
        data = json.loads(path.read_text())
        if path.name.endswith("-long.json"):
            hit = data.get("method_sha256") == from_method
        else:
            hit = from_code is not None and data.get("code_sha256") == from_code
            if hit:
                data["code_sha256"] = new_code
        if hit:
            if data.get("method_sha256") == from_method:
                data["method_sha256"] = new_method
            _note(data, entry | ({"from_code_sha256": from_code} if "code_sha256" in data else {}))
            write_atomic(path, data)
            changed.append(path)
    for path in sorted((root / "bigram").glob("*.json")):
        data = json.loads(path.read_text())
        hit = False
        for part in (data, data.get("unigram_control") or {}):
            if part.get("method") == method and part.get("method_sha256") == from_method:
                part["method_sha256"] = new_method
                _note(part, entry)
                hit = True
        if hit:
            write_atomic(path, data)
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("method")
    ap.add_argument("--from-method", required=True, help="the source hash (method_sha256) the files carry now")
    ap.add_argument("--from-code", help="the learning curves' code_sha256 they carry now (omit: curves untouched)")
    ap.add_argument("--log", required=True, help="the committed proof, relative to the repository root")
    ap.add_argument("--why", required=True, help="one sentence: what moved, and that nothing fitted changed")
    args = ap.parse_args(argv)
    changed = rekey(args.method, args.from_method, args.from_code, args.log, args.why)
    for path in changed:
        print(path.relative_to(PROJECT_ROOT))
    print(f"{len(changed)} file(s) re-keyed")


if __name__ == "__main__":
    main()
