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

__all__ = ["build_parser", "main"]


def _cmd_models_train(args: argparse.Namespace) -> int:
    import torch

    from benchmark.zoo.train import TrainConfig, train

    members = tuple((v, s) for v in args.variant for s in args.seed)
    configs = [TrainConfig(hidden=n, members=members, architecture=args.architecture,
                           **({"steps": args.steps} if args.steps else {})) for n in args.hidden]
    if args.ray is not None:
        return _train_on_ray(args, configs)
    if args.device != "cpu":
        from benchmark.hardware import check_device

        check_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    for config in configs:
        print(f"training {len(members)} {args.architecture} model(s) of hidden size {config.hidden} for "
              f"{config.steps:,} steps into {args.out} on {torch.get_num_threads()} thread(s) "
              "(rerun the same command to resume)")
        for folder in train(config, Path(args.out), progress=not args.quiet, device=args.device):
            _print_trained(_read_json(folder / "training.json"), folder)
    return 0


def _print_trained(info: dict, folder) -> None:
    print(f"{info['name']}: test exact match {info['test_exact_match']:.4f}, "
          f"{info['model_seconds']:.0f} s per model, -> {folder}")


def _train_on_ray(args: argparse.Namespace, configs: list) -> int:
    """One Ray task per hidden size; each declares its threads as CPUs, and a GPU when --device is one."""
    from benchmark.harness.ray_executor import RayResources, map_tasks
    from benchmark.zoo.train import TrainJob, run_job

    threads = args.threads or 1
    gpus = 0.0 if args.device == "cpu" else 1.0
    jobs = [TrainJob(c, str(Path(args.out).resolve()), args.device, threads) for c in configs]
    where = args.ray or "a local instance"
    print(f"training {len(jobs)} ensemble(s) (hidden {', '.join(str(c.hidden) for c in configs)}) as Ray tasks on "
          f"{where}, {threads} CPU(s){' and 1 GPU' if gpus else ''} each (rerun the same command to resume)")
    failed = 0
    for job, infos, error in map_tasks(run_job, jobs, RayResources(cpus=threads, gpus=gpus), args.ray or None):
        if error is not None:
            failed += 1
            text = str(error).strip()  # a task's error ends with the exception it raised
            print(f"hidden {job.config.hidden}: failed: {text.splitlines()[-1] if text else type(error).__name__}",
                  file=sys.stderr)
            continue
        for info in infos or []:
            _print_trained(info, info["folder"])
    return 1 if failed else 0


class _Parser(argparse.ArgumentParser):
    """One line on bad arguments (the usage block buries the reason); --help still shows the usage."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _at_least_one(text: str) -> int:
    """argparse type: an integer >= 1 (--workers 0 would run nothing, -1 is meaningless)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive(text: str) -> float:
    """argparse type: a number > 0 (a limit of 0 s or 0 GB fails every cell)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {text}")
    return value


def _cmd_check(args: argparse.Namespace) -> int:
    from benchmark.harness.conformance import run_checks
    from benchmark.harness.submission import resolve

    spec = resolve(args.folder)
    print(f"checking {spec.name} ({spec.folder}) on the two tiny check models")
    results = run_checks(spec)
    for r in results:
        print(f"  {r.status}  {r.name}" + (f": {r.reason}" if r.reason else ""))
        if args.verbose and r.traceback:
            print("    " + r.traceback.rstrip().replace("\n", "\n    "))
    failed = [r for r in results if not r.passed]
    skipped = sum(r.skipped for r in results)
    print(f"{len(results) - len(failed) - skipped} passed, {len(failed)} failed, {skipped} skipped")
    return 1 if failed else 0


def _cmd_score(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.harness.isolation.launch import Limits
    from benchmark.harness.runner import ScoreSettings
    from benchmark.zoo.registry import select
    from benchmark.zoo.resolve import require_available

    if args.fitted:
        from benchmark.cli.fitted import cmd_score_fitted

        return cmd_score_fitted(args)
    models = select(args.models)
    require_available(models)
    if args.ray is None and args.device != "cpu":  # a cluster's driver need not have the GPU its workers have
        from benchmark.hardware import check_device

        check_device(args.device)
    settings = ScoreSettings(seed=args.seed, budget=args.budget, device=args.device)
    limits = Limits(timeout_s=args.timeout, memory_gb=args.memory)
    from benchmark.harness.defaults import scratch_results

    args.fresh_seed = None
    if args.fresh:
        import secrets

        args.fresh_seed = secrets.randbits(31)
        args.results = args.results or str(Path("runs") / f"fresh-{args.fresh_seed}")
        print(f"--fresh: a test split and plan drawn from seed {args.fresh_seed} (records "
              f"name it); records -> {args.results}, never to the committed results")
    args.results = args.results or str(scratch_results())
    where = (f"as Ray tasks ({args.ray or 'local instance'})" if args.ray is not None
             else f"{args.workers} cell(s) at a time") + (f", fit on {args.device}" if args.device != "cpu" else "")
    print(f"scoring {len(args.folder)} method(s) on {len(models)} model(s), {where}, each "
          f"cell in its own fit and scoring processes (limits {limits.timeout_s:g} s, {limits.memory_gb:g} GB); "
          f"records -> {args.results}")
    rows: list[list] = []
    for folder in args.folder:
        rows += _score_one_method(folder, models, settings, limits, args)
    from benchmark.harness.tracks import TRACKS

    headers = ["method", "model", *[f"{t} {track.metric}" for t, track in TRACKS.items()], "size", "fit s", "eval s",
               "status"]
    print(tabulate(rows, headers=headers, disable_numparse=True))
    failed = [f"{r[0]} on {r[1]}" for r in rows if r[-1].startswith("FAILED")]
    if failed:
        print(f"onionbench: {len(failed)} cell(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def _score_one_method(folder: str, models: list[str], settings, limits, args: argparse.Namespace) -> list[list]:
    """Score one method; a malformed folder is reported as a failed row, never fatal for the run."""
    from benchmark.harness.runner import score_many
    from benchmark.harness.submission import SubmissionError, resolve

    try:
        spec = resolve(folder)
    except SubmissionError as err:
        return [[folder, "-", *[""] * 7, f"FAILED: {err}"]]
    if not args.no_check:  # seconds, sealed: a wrong-shape method fails here, not after a long fit
        from benchmark.harness.conformance import run_checks

        failed = [r for r in run_checks(spec) if not r.passed]
        for r in failed:
            print(f"{spec.name}: check failed: {r.name}: {r.reason}", file=sys.stderr)
        if failed:
            return [[spec.name, "-", *[""] * 7, f"FAILED check {failed[0].name} (scored nothing; "
                                                 f"onionbench check {folder}, or --no-check)"]]
    from benchmark.harness.backends import EXECUTORS

    kind = args.executor or ("ray" if args.ray is not None else "local" if args.workers > 1 else "sequential")
    if kind not in EXECUTORS:
        raise OnionbenchError(f"unknown executor {kind!r}; registered: {', '.join(EXECUTORS)} "
                              "(benchmark/harness/backends.py)")
    executor = EXECUTORS[kind](workers=args.workers, address=args.ray or None)
    cells = score_many(spec, models, Path(args.results), settings=settings, force=args.force,
                       progress=not args.quiet, limits=limits, executor=executor, fresh_seed=args.fresh_seed)
    if getattr(args, "verbose", False):
        for name, rec, _ in cells:
            if rec["status"] != "ok" and rec.get("error_detail"):
                print(f"--- {spec.name} on {name}: {rec['error']}\n{rec['error_detail']}", file=sys.stderr)
    return [[spec.name, *_summary_row(name, rec, reused)] for name, rec, reused in cells]


def _summary_row(name: str, rec: dict, reused: bool) -> list:
    m = rec["metrics"]

    def get(track: str, key: str) -> str:
        return "n/a" if m.get(track) is None else f"{m[track][key]:.3f}"

    from benchmark.harness.tracks import TRACKS

    if rec["status"] != "ok":
        return [name, *[""] * (len(TRACKS) + 3), f"FAILED: {rec['error'][:160]}"]
    return [name, *[get(t, track.metric) for t, track in TRACKS.items()], f"{rec.get('method_parameters', 0):,}",
            f"{rec['fit']['seconds']:.1f}", f"{rec['eval_seconds']:.1f}", "ok (up to date)" if reused else "ok"]


def _cmd_models_list(args: argparse.Namespace) -> int:
    import json

    from tabulate import tabulate

    from benchmark.zoo.registry import load_registry
    from benchmark.zoo.resolve import availability

    rows = []
    for e in load_registry().values():
        rows.append({"name": e.name, "hidden_size": e.hidden_size, "variant": e.variant, "seed": e.seed,
                     "tier": e.tier, "parameters": e.parameters, "sha256": e.sha256,
                     "test_accuracy": e.test_accuracy, "embedded": (e.embedded_folder / "model.safetensors").exists(),
                     "available": availability(e), "hub_repo": e.hub_repo, "hub_revision": e.hub_revision, "plan": e.plan})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(tabulate([[r["name"], r["tier"], f"{r['parameters']:,}",
                     "-" if r["test_accuracy"] is None else f"{r['test_accuracy']:.4f}", r["available"]] for r in rows],
                   headers=["model", "tier", "params", "test exact match", "available"]))
    for plan in dict.fromkeys(r["plan"] for r in rows if r["plan"]):
        names = [r["name"] for r in rows if r["plan"] == plan]
        print(f"\nnot trained yet ({len(names)} models): {plan}")
    return 0


def _cmd_models_path(args: argparse.Namespace) -> int:
    """Where each model's files are (embedded, cached, or downloaded on first use)."""
    from benchmark.zoo.registry import select
    from benchmark.zoo.resolve import model_folder

    for name in select(args.names):
        print(f"{name}\t{model_folder(name)}")
    return 0


def _cmd_models_embed(args: argparse.Namespace) -> int:
    from benchmark.zoo.registry import embed

    if not Path(args.source).is_dir():
        raise OnionbenchError(f"{args.source} is not a folder; pass the --out folder of `onionbench models train`")
    done = embed(Path(args.source))
    print("embedded: " + (", ".join(done) or "nothing new (only finished, full-recipe models are embedded)"))
    return 0


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from benchmark.board.artifacts import build, write_artifacts
    from benchmark.board.leaderboard import load_records, stale_methods
    from benchmark.harness.submission import source_hashes

    records, refused = load_records(Path(args.results))
    print(f"building the leaderboard from {len(records)} record(s) in {args.results} -> {args.out}")
    sources, unreadable = source_hashes()  # a changed method: stale; a broken folder hides no one's rows
    refused += [f"method folder not read (its rows cannot be checked for staleness): {m}" for m in unreadable]
    artifacts = build(records, sources=sources)
    stale = sorted(stale_methods(records, sources))
    if stale:
        print(f"onionbench: stale rows (method source changed since scoring; not ranked until re-scored with "
              f"onionbench score --force): {', '.join(stale)}", file=sys.stderr)
    readme = None if args.no_readme else Path(args.out).resolve().parent / "README.md"
    write_artifacts(artifacts, Path(args.out), readme)
    for name in sorted(artifacts):
        print(f"  wrote {name if name != 'README-block.md' else 'README.md (leaderboard block)'}")
    for message in refused:
        print(f"onionbench: refused: {message}", file=sys.stderr)
    return 1 if refused else 0


def _cmd_cite(args: argparse.Namespace) -> int:
    from benchmark.audit.cite import cite

    print(cite(Path(args.results), args.row))
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    import secrets

    from benchmark.audit.verify import verify
    from benchmark.harness.isolation.launch import Limits

    fresh = args.fresh or args.fresh_seed is not None
    seed = (args.fresh_seed if args.fresh_seed is not None else secrets.randbits(31)) if fresh else None
    mode = f"on a fresh split and plan from seed {seed} (repeat with --fresh-seed {seed})" if fresh else "exactly"
    print(f"verifying row {args.row} from {args.results}: re-scoring each of its cells {mode}")
    row_id, checks, _ = verify(Path(args.results), args.row, models=args.models, fresh=fresh, fresh_seed=seed,
                               limits=Limits(timeout_s=args.timeout, memory_gb=args.memory))
    for c in checks:
        print(f"  {'MATCH   ' if c.matches else 'MISMATCH'} {c.model}: {c.detail}")
    bad = sum(not c.matches for c in checks)
    print(f"{row_id}: {len(checks) - bad} of {len(checks)} cells {'agree with' if fresh else 'match'} the committed records")
    return 1 if bad else 0


def _read_json(path: Path) -> dict:
    import json

    return json.loads(path.read_text())


def build_parser() -> argparse.ArgumentParser:
    """The `onionbench` argument parser: `models ...`, `check`, `score`, `leaderboard`, `cite`, `verify`."""
    parser = _Parser(prog="onionbench", description="Benchmark for representation hypotheses "
                                     "on GRUs that repeat sequences (Csordás et al., 2024).")
    parser.add_argument("--verbose", action="store_true", help="show tracebacks on errors")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_models_commands(commands)
    _add_scoring_commands(commands)
    from benchmark.cli.fitted import add_export_command

    add_export_command(commands)
    _add_leaderboard_commands(commands)
    return parser


def _add_models_commands(commands) -> None:
    from benchmark.cli.hub import add_hub_commands

    models = commands.add_parser("models", help="reference models: list, download, train, publish")
    models_cmd = models.add_subparsers(dest="models_command", required=True)
    listing = models_cmd.add_parser("list", help="the reference models and where each is available")
    listing.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    listing.set_defaults(func=_cmd_models_list)
    where = models_cmd.add_parser("path", help="print where a model's files are (embedded models need no download)")
    where.add_argument("names", nargs="+", help="model names or selections (core, lstm, smoke, ...)")
    where.set_defaults(func=_cmd_models_path)
    add_hub_commands(models_cmd)  # models publish, models download
    embed = models_cmd.add_parser("embed", help="copy finished model folders into the embedded zoo (maintainers)")
    embed.add_argument("source", help="folder holding finished NAME/ model folders (e.g. runs/zoo)")
    embed.set_defaults(func=_cmd_models_embed)
    train = models_cmd.add_parser("train", help="train reference models with the paper's recipe (resumable)")
    train.add_argument("--architecture", default="gru",
                       help="model family (default gru; lstm: state (h, c), state_dim 2N)")
    train.add_argument("--hidden", type=int, nargs="+", required=True,
                       help="hidden size(s) N; one ensemble per size, one after another (or at once with --ray)")
    train.add_argument("--variant", nargs="+", choices=VARIANTS, default=["ar"],
                       help="decoder variant(s); several are trained together as one ensemble")
    train.add_argument("--seed", type=int, nargs="+", default=[0], help="seed(s); one model per (variant, seed)")
    train.add_argument("--steps", type=int, help="optimiser steps (default: the recipe's 40,000)")
    train.add_argument("--out", default="runs",
                       help="parent folder; each model goes to OUT/{architecture}-h{N}-{variant}-s{seed}")
    train.add_argument("--threads", type=int, help="torch threads (default: torch's, which follows OMP_NUM_THREADS)")
    train.add_argument("--device", default="cpu", help="torch device for the training steps, e.g. cuda (default "
                       "cpu; data, validation and checkpoints stay on the CPU, so a run resumes anywhere)")
    train.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="one Ray task per hidden size: on the "
                       "cluster at ADDRESS (auto or host:port), or on a local instance started for the run (needs "
                       "pip install 'onionbench[ray]'; --out must be a folder every node sees)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(func=_cmd_models_train)


def _add_scoring_commands(commands) -> None:
    from benchmark.harness.defaults import DEFAULT_BUDGET, DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT_S

    check = commands.add_parser("check", help="run the conformance checks on a method folder (seconds)")
    check.add_argument("folder", help="method folder (method.toml + method.py) or a discovered method's name")
    _add_verbose(check)
    check.set_defaults(func=_cmd_check)
    score = commands.add_parser("score", help="fit and score a method on reference models, one record per model")
    score.add_argument("folder", nargs="+", help="method folder(s) or discovered methods' names")
    score.add_argument("--models", nargs="+", default=["smoke"],
                       help="model names, model folders, or the sets core / smoke / extended / all (default: smoke)")
    score.add_argument("--results", help="records go to RESULTS/METHOD/MODEL.json (default: runs/results of the "
                       "checkout, else of the working directory, never the committed results; maintainers pass "
                       "--results leaderboard/results; with --fresh: runs/fresh-SEED)")
    score.add_argument("--seed", type=int, default=0, help="seed for fit and scoring (default 0)")
    score.add_argument("--budget", type=int, default=DEFAULT_BUDGET,
                       help=f"max sequences the method may encode during fit (default {DEFAULT_BUDGET:,})")
    score.add_argument("--force", action="store_true", help="re-score cells whose record is up to date")
    score.add_argument("--executor", metavar="NAME", help="a registered executor by name (benchmark/harness/backends.py;"
                       " default: sequential, local with --workers > 1, ray with --ray)")
    score.add_argument("--no-check", action="store_true", help="skip the conformance checks that run before any fit "
                       "(seconds; a method that fails them is not scored)")
    score.add_argument("--timeout", type=_positive, default=DEFAULT_TIMEOUT_S,
                       help=f"wall-clock limit per cell in seconds, fit included (default {DEFAULT_TIMEOUT_S})")
    score.add_argument("--memory", type=_positive, default=DEFAULT_MEMORY_GB,
                       help=f"memory (address space) limit per cell in GB (default {DEFAULT_MEMORY_GB:g})")
    score.add_argument("--workers", type=_at_least_one, default=1, help="cells run at once, each in its own processes "
                       "(default 1; each gets cores/N torch threads)")
    score.add_argument("--ray", nargs="?", const="", metavar="ADDRESS", help="run each cell as a Ray task: on "
                       "the cluster at ADDRESS (auto or host:port), or on a local instance started for the run "
                       "(needs pip install 'onionbench[ray]')")
    score.add_argument("--device", default="cpu", help="torch device for fit, e.g. cuda (default cpu). The model "
                       "runs there; scoring stays on the CPU. A different device is a different cell: floats differ")
    score.add_argument("--fitted", action="store_true", help="the folders are artifacts from `onionbench export`: "
                       "score them without fitting (harness code only)")
    score.add_argument("--fresh", action="store_true", help="score on a test split and plan drawn from an OS seed "
                       "(printed); the records never go to the committed results")
    score.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_verbose(score)
    score.set_defaults(func=_cmd_score)


def _add_leaderboard_commands(commands) -> None:
    from benchmark.harness.defaults import DEFAULT_MEMORY_GB, DEFAULT_TIMEOUT_S, default_results

    results = {"default": str(default_results()), "help": "folder of result records"}
    board = commands.add_parser("leaderboard", help="build the leaderboard (Markdown, CSV, JSON, HTML) from records")
    board.add_argument("--results", **results)
    board.add_argument("--out", default=str(default_results().parent), help="where the artifacts go")
    board.add_argument("--no-readme", action="store_true", help="do not refresh the README block next to OUT")
    board.set_defaults(func=_cmd_leaderboard)
    cite = commands.add_parser("cite", help="BibTeX for the benchmark, or for one leaderboard row")
    cite.add_argument("row", nargs="?", help="row id (e.g. onion@v1) or method name")
    cite.add_argument("--results", **results)
    cite.set_defaults(func=_cmd_cite)
    verify = commands.add_parser("verify", help="re-score a leaderboard row and diff it against its records")
    verify.add_argument("row", help="row id (e.g. onion@v1), method name, or method folder")
    verify.add_argument("--models", nargs="+", help="only the cells on these models (default: all of the row's)")
    verify.add_argument("--results", **results)
    verify.add_argument("--fresh", action="store_true", help="re-score on a split and plan from an OS seed and check "
                        "that each committed metric lies in the fresh one's 99 %% sampling interval")
    verify.add_argument("--fresh-seed", type=int, help="repeat a --fresh run with this seed")
    verify.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="wall-clock limit per cell (s)")
    verify.add_argument("--memory", type=float, default=DEFAULT_MEMORY_GB, help="memory limit per process (GB)")
    _add_verbose(verify)
    verify.set_defaults(func=_cmd_verify)
    for sub in (board, cite):
        _add_verbose(sub)


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    """`--verbose` after the subcommand too (argparse keeps the top-level one otherwise)."""
    parser.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help="show tracebacks on errors")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `onionbench` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except OnionbenchError as err:  # only what the user can fix; a bug keeps its traceback
        if args.verbose:
            raise
        print(f"onionbench: error: {err}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `onionbench models list | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("onionbench: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
