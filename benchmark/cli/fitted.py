"""`onionbench export` and `onionbench score --fitted`: declared cells as artifacts (issue 28 item 6)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tabulate import tabulate

from benchmark.errors import OnionbenchError


def cmd_export(args: argparse.Namespace) -> int:
    """Fit and score a declared method on each model in a sealed cell; keep the scored forms."""
    from benchmark.harness import artifacts
    from benchmark.harness.cell import ScoreSettings, run_cell
    from benchmark.harness.isolation.launch import Limits
    from benchmark.harness.submission import resolve
    from benchmark.zoo.registry import select
    from benchmark.zoo.resolve import load_reference, require_available

    spec = resolve(args.method)
    if args.device != "cpu":
        from benchmark.hardware import check_device

        check_device(args.device)
    models = select(args.models)
    folders = [m for m in models if Path(m).is_dir()]
    if folders:
        raise OnionbenchError(f"export takes registry models only, not folders ({', '.join(folders)}): "
                              "score --fitted loads the model an artifact names from the registry")
    require_available(models)
    out = Path(args.out)
    rows, failed = [], []
    for name in models:
        model, provenance = load_reference(name)
        blobs: list[bytes] = []
        settings = ScoreSettings(seed=args.seed, budget=args.budget, device=args.device)
        rec = run_cell(spec, model, provenance, settings=settings, fitted_out=blobs,
                       limits=Limits(timeout_s=args.timeout, memory_gb=args.memory))
        if rec["status"] != "ok":
            failed.append(f"{name}: {rec['error']}")
            continue
        if rec.get("method_kind") != "declared" or not blobs:
            raise OnionbenchError(f"{spec.name} is an open method (its fit returns the method, not intervention "
                                  "forms): only declared methods export; see submissions/README.md")
        folder = artifacts.write(out / spec.name / name, rec, blobs[0])
        d = rec["fit"]["declaration"]
        rows.append([name, ", ".join(f"{k}:{v}" for k, v in d["forms"].items()), f"{d['parameters']:,}", str(folder)])
    print(tabulate(rows, headers=["model", "forms", "parameters", "artifact"], disable_numparse=True))
    for line in failed:
        print(f"onionbench: {spec.name} failed on {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_score_fitted(args: argparse.Namespace) -> int:
    """Score artifacts (no fit, no method code): records to RESULTS/METHOD/MODEL.json.

    A bad artifact is reported in one line and skipped; the others are still scored.
    """
    from benchmark.harness import artifacts
    from benchmark.harness.cell import ScoreSettings
    from benchmark.harness.defaults import DEFAULT_BUDGET, scratch_results
    from benchmark.harness.submission import readable_methods
    from benchmark.records import record_path, write_atomic
    from benchmark.zoo.resolve import load_reference

    ignored = [flag for flag, on in (("--fresh", args.fresh), ("--force", args.force), ("--device", args.device != "cpu"),
                                     ("--budget", args.budget != DEFAULT_BUDGET)) if on]
    if ignored:
        raise OnionbenchError(f"score --fitted does not fit, so {', '.join(ignored)} would be ignored; drop "
                              f"{'it' if len(ignored) == 1 else 'them'} (the fit's settings are the exporting cell's)")
    folders = [f for root in args.folder for f in artifacts.find(Path(root))]
    results = Path(args.results or scratch_results())
    known, refused = readable_methods()  # a broken folder elsewhere stops no one's artifacts
    print(f"scoring {len(folders)} fitted artifact(s) without fitting (harness code only); records -> {results}")
    rows, failed = [], []
    for folder in folders:
        try:
            art = artifacts.read(folder)
            is_baseline = artifacts.claim(art, known, refused)
            model, provenance = load_reference(art.spec["model"]["name"])
            rec = artifacts.score(art, model, provenance, is_baseline=is_baseline, settings=ScoreSettings(seed=args.seed))
        except OnionbenchError as err:
            failed.append(str(err))
            continue
        write_atomic(record_path(results, rec["method"]["name"], rec["model"]["name"]), rec)
        same = rec["metrics"] == art.spec["metrics"]
        rows.append([rec["method"]["name"], rec["model"]["name"], _headline(rec), "yes" if same else "NO"])
    print(tabulate(rows, headers=["method", "model", "write / interchange IIA", "= exported metrics"],
                   disable_numparse=True))
    for line in failed:
        print(f"onionbench: {line}", file=sys.stderr)
    return 1 if failed else 0


def _headline(rec: dict) -> str:
    m = rec["metrics"]
    return " / ".join("-" if m.get(t) is None else f"{m[t]['iia']:.3f}" for t in ("write", "interchange"))


def add_export_command(commands) -> None:
    from benchmark.harness.defaults import DEFAULT_BUDGET, DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT_S

    export = commands.add_parser("export", help="fit a declared method and save its forms as artifacts "
                                 "(score them later with `score --fitted`)")
    export.add_argument("method", help="method folder or a discovered method's name (a declared method)")
    export.add_argument("--models", nargs="+", default=["smoke"], help="model names or sets (default: smoke)")
    export.add_argument("--out", default="runs/artifacts", help="artifacts go to OUT/METHOD/MODEL/ "
                        "(default runs/artifacts; not for git)")
    export.add_argument("--seed", type=int, default=0, help="seed for fit and scoring (default 0)")
    export.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                        help=f"max sequences the method may encode during fit (default {DEFAULT_BUDGET:,})")
    export.add_argument("--device", default="cpu", help="torch device for fit, e.g. cuda (default cpu): fit "
                        "where you have the hardware, score the artifact anywhere")
    export.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="per cell, in seconds")
    export.add_argument("--memory", type=float, default=DEFAULT_MEMORY_GB, help="per cell, in GB")
    export.set_defaults(func=cmd_export)
