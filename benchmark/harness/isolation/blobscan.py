"""The trusted check of a fitted method's bytes, before scoring starts (no torch, no unpickling).

`guard.py` checks the fitted method inside the fit process, where it can name attribute
paths; but that process runs the method's own code, which could disable the check. So the
supervisor, which runs no method code, scans the pickled bytes itself before it lets the
scoring process start:

- every reference weight (and the transpose of every matrix) as raw float32 bytes: a copy
  of a weight, alone or inside a larger tensor or array, appears verbatim in the pickle;
- the module of the reference model's class (`benchmark.zoo.gru`, ...): pickling the model,
  or the `FrozenModel` / `FitData` that hold it, writes that module's name into the stream.

A weight transformed otherwise (scaled, compressed) is not caught; that is for review.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass

MIN_BYTES = 64  # shorter patterns could occur by chance in unrelated data


@dataclass(frozen=True)
class Fingerprints:
    """What a fitted method's bytes may not contain."""

    weights: tuple[tuple[str, bytes], ...]  # (weight name, raw bytes), transposes included
    modules: tuple[str, ...]  # module names whose objects may not be pickled

    def dumps(self) -> bytes:
        return pickle.dumps((self.weights, self.modules))

    @classmethod
    def loads(cls, data: bytes) -> Fingerprints:
        weights, modules = pickle.loads(data)  # written by the harness process: trusted
        return cls(tuple(weights), tuple(modules))


def scan_blob(blob: bytes, fingerprints: Fingerprints) -> str | None:
    """The one-line reason the fitted method is refused, or None."""
    for module in fingerprints.modules:
        if module.encode() in blob:
            return (f"the fitted method's pickled state refers to {module!r}, the reference model's module; the "
                    "model is for fit only: keep only what your hypothesis learned")
    for name, pattern in fingerprints.weights:
        if len(pattern) >= MIN_BYTES and pattern in blob:
            return (f"the fitted method's pickled state contains a copy of the reference weight {name}; the model "
                    "is for fit only: learn your own parameters instead")
    return None
