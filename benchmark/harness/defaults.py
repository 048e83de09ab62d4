"""Defaults the command line shows in its help, kept free of torch so `--help` starts fast."""

from __future__ import annotations

from pathlib import Path

DEFAULT_TIMEOUT_S = 1800  # per (method, model) cell, fit included: 10x the baselines' slowest cell
DEFAULT_MEMORY_GB = 8.0  # address space per process; importing torch alone takes ~1 GB of it
DEFAULT_BUDGET = 1_000_000  # sequences through the encoder during fit (the paper's onion run used 15 M)
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout, when running from one


def default_results() -> Path:
    """`leaderboard/results` of the checkout we run from, else ./leaderboard/results (an installed wheel)."""
    if (PROJECT_ROOT / "pyproject.toml").exists() and (PROJECT_ROOT / "leaderboard").is_dir():
        return PROJECT_ROOT / "leaderboard" / "results"
    return Path.cwd() / "leaderboard" / "results"


def scratch_results() -> Path:
    """Where `onionbench score` writes by default: runs/results of the checkout (or of the working
    directory), never the committed leaderboard/results (pass `--results leaderboard/results` to
    re-score committed rows). A smoke run then cannot add an incomplete row to the board."""
    base = PROJECT_ROOT if (PROJECT_ROOT / "pyproject.toml").exists() else Path.cwd()
    return base / "runs" / "results"
