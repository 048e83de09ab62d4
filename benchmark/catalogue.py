"""The track catalogue: what every track *is*, without torch (issue 32 item 1).

Scoring (`benchmark.harness.tracks`, which needs torch) and the leaderboard (`benchmark.board`,
which must build without it) both read the names, metrics and labels of the tracks from here,
so a new track is one track module plus one line below, and it reaches every board table.

The board reads the catalogue through live views (`board_metric`, `board_label`, ...): a
track added here, or registered by a test, shows up without touching `benchmark/board`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class TrackInfo:
    """One track's metadata."""

    name: str
    metric: str  # the metric a board cell shows
    metric_names: tuple[str, ...]  # every metric the track reports (its record schema)
    label: str  # how a board names the track's metric
    causal: bool = False  # counted in the headline (an intervention, not a read-out)
    on_board: bool = True  # has tables of its own on the leaderboard
    position_label: str | None = None  # the title of its by-position table (None: no such table)


CATALOGUE: dict[str, TrackInfo] = {t.name: t for t in (
    TrackInfo("read", "sequence_accuracy", ("token_accuracy", "sequence_accuracy"), "READ sequence accuracy",
              position_label="READ token accuracy"),
    TrackInfo("write", "iia", ("iia", "cause", "isolate", "kept_fraction"), "WRITE IIA", causal=True,
              position_label="WRITE IIA"),
    TrackInfo("interchange", "iia", ("iia", "kept_fraction"), "INTERCHANGE IIA", causal=True),
    TrackInfo("consistency", "agreement", ("agreement", "token_agreement", "at_written"),
              "CONSISTENCY agreement", on_board=False),
)}


class _View(Mapping[str, str]):
    """A read-only, always-current mapping track name -> one field, over the board's tracks."""

    def __init__(self, get, keep=lambda t: t.on_board) -> None:  # type: ignore[no-untyped-def]
        self._get, self._keep = get, keep

    def _items(self) -> dict[str, str]:
        return {n: self._get(t) for n, t in CATALOGUE.items() if self._keep(t)}

    def __getitem__(self, key: str) -> str:
        return self._items()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items())

    def __len__(self) -> int:
        return len(self._items())


board_metric: Mapping[str, str] = _View(lambda t: t.metric)  # track -> the metric its board cells show
board_label: Mapping[str, str] = _View(lambda t: t.label)
position_label: Mapping[str, str] = _View(lambda t: t.position_label, lambda t: t.position_label is not None)
causal_tracks: Mapping[str, str] = _View(lambda t: t.label, lambda t: t.causal)  # the headline's tracks
