"""The leaderboard's artifacts, built from records and written to disk.

`build(records)` returns every artifact as text (Markdown, CSV, JSON, the self-contained
HTML page, the README block), so "the committed leaderboard equals a fresh build" is a
plain string comparison. Aggregation is in `benchmark.board.leaderboard`, rendering in
`benchmark.board.render` and `benchmark.board.page`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from benchmark.board.calibration import calibration
from benchmark.board.calibration import to_json as calibration_json
from benchmark.board.leaderboard import (
    README_END,
    README_START,
    _unpinned,
    build_rows,
    pins_from_registry,
    references,
    to_csv,
    to_json,
)
from benchmark.board.page import render_page
from benchmark.board.render import render_markdown, render_readme_block
from benchmark.errors import OnionbenchError


def build(records: list[dict], registry: Mapping[str, Any] | None = None,
          sources: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every artifact, by file name (pure: same records, registry and sources -> same bytes).

    `sources`: method name -> folder sha256 today, to flag stale rows (`build_rows`).
    Raises OnionbenchError naming the records when they are not comparable."""
    rows = build_rows(records, registry, sources)
    pins = pins_from_registry(registry)
    refs = references(records, pins)
    cal = calibration(records, pins)
    failed = sorted(f"{r['method']['name']} on {r['model']['name']}: {r['error']}" for r in records
                    if r["status"] != "ok")
    notes = {"unpinned_records": _unpinned(records, pins),
             "dirty_records": sorted(f"{r['method']['name']}/{r['model']['name']}" for r in records
                                     if r["harness_commit"].endswith("-dirty"))}
    return {"LEADERBOARD.md": render_markdown(rows, refs, notes, cal), "leaderboard.csv": to_csv(rows),
            "leaderboard.json": to_json(rows, failed, notes, refs, calibration_json(cal)),
            "index.html": render_page(rows, refs, cal),
            "README-block.md": render_readme_block(rows)}


def write_artifacts(artifacts: dict[str, str], out: Path, readme: Path | None) -> None:
    """Write the files and refresh the README block between the markers."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in artifacts.items():
        if name != "README-block.md":
            (out / name).write_text(text)
    if readme is not None and readme.exists():
        readme.write_text(replace_readme_block(readme.read_text(), artifacts["README-block.md"]))


def replace_readme_block(text: str, block: str) -> str:
    if README_START not in text or README_END not in text:
        raise OnionbenchError(f"README has no {README_START} ... {README_END} markers for the leaderboard block")
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    return f"{head}{README_START}\n{block}{README_END}{tail}"
