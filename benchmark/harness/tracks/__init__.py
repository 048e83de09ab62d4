"""The track registry: every track the harness scores, in scoring order.

Adding a track: write one module with a `Track` object (see `base.Track`) and add one line
here. Queries, the scoring process, the record schema, the leaderboard metric and the CLI
summary all iterate over this list.
"""

from __future__ import annotations

from benchmark.harness.tracks import consistency, interchange, read, write
from benchmark.harness.tracks.base import MethodError, Track, TrackQueries, TrackScore

TRACKS: dict[str, Track] = {
    "read": read.TRACK,
    "write": write.TRACK,
    "interchange": interchange.TRACK,
    "consistency": consistency.TRACK,
}

# What a method may declare in its `tracks` attribute (consistency follows from read + write).
DECLARABLE = ("read", "write", "interchange")

__all__ = ["DECLARABLE", "TRACKS", "MethodError", "Track", "TrackQueries", "TrackScore"]
