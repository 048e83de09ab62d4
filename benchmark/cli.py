"""`onionbench` command line: parses arguments, calls one library function, prints.

Every failure the user can fix is an `OnionbenchError` and prints as one line
(`onionbench: error: ...`) with exit code 2; `--verbose` shows the traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmark.errors import OnionbenchError
from benchmark.task import VARIANTS


def _cmd_models_train(args: argparse.Namespace) -> int:
    from benchmark.train import TrainConfig, train

    members = tuple((v, s) for v in args.variant for s in args.seed)
    config = TrainConfig(hidden=args.hidden, members=members, **({"steps": args.steps} if args.steps else {}))
    print(f"training {len(members)} model(s) of hidden size {args.hidden} for {config.steps:,} steps "
          f"into {args.out} (rerun the same command to resume)")
    for folder in train(config, Path(args.out), progress=not args.quiet):
        info = _read_json(folder / "training.json")
        print(f"{info['name']}: test exact match {info['test_exact_match']:.4f}, "
              f"{info['model_seconds']:.0f} s per model, -> {folder}")
    return 0


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onionbench", description="Benchmark for representation hypotheses "
                                     "on GRUs that repeat sequences (Csordás et al., 2024).")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    models = commands.add_parser("models", help="reference models: list, download, train, publish")
    models_cmd = models.add_subparsers(dest="models_command", required=True)

    train = models_cmd.add_parser("train", help="train reference GRUs with the paper's recipe (resumable)")
    train.add_argument("--hidden", type=int, required=True, help="hidden size N")
    train.add_argument("--variant", nargs="+", choices=VARIANTS, default=["ar"],
                       help="decoder variant(s); several are trained together as one ensemble")
    train.add_argument("--seed", type=int, nargs="+", default=[0], help="seed(s); one model per (variant, seed)")
    train.add_argument("--steps", type=int, help="optimiser steps (default: the recipe's 40,000)")
    train.add_argument("--out", default="runs", help="parent folder; each model goes to OUT/gru-h{N}-{variant}-s{seed}")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_models_train)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `onionbench` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (OnionbenchError, FileNotFoundError, ValueError, KeyError) as err:
        if args.verbose:
            raise
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"onionbench: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("onionbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
