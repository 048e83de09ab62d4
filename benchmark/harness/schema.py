"""The published record schema, built from the track registry.

`record.schema.json` is what validation reads (without importing torch); this module
rebuilds it from `TRACKS`, and a test checks the two agree. After adding a track, run
`python -m benchmark.harness.schema` to refresh the file.
"""

from __future__ import annotations

import json

from benchmark.harness.submission import HYPOTHESES
from benchmark.harness.tracks import DECLARABLE, TRACKS
from benchmark.harness.tracks.base import schema_fragment
from benchmark.records import RECORD_VERSION, SCHEMA_PATH

_SHA = {"$ref": "#/$defs/sha256"}
_RATES = {"type": "object", "additionalProperties": {"$ref": "#/$defs/rate"}}


def _method() -> dict:
    return {"type": "object",
            "required": ["name", "hypothesis", "baseline", "source_sha256", "params", "entry", "url", "authors"],
            "properties": {"name": {"type": "string"}, "hypothesis": {"enum": list(HYPOTHESES)},
                           "baseline": {"type": "boolean"}, "source_sha256": _SHA, "params": {"type": "object"},
                           "entry": {"type": "string"}, "url": {"type": "string"},
                           "authors": {"type": "array", "items": {"type": "string"}}}}


def _model() -> dict:
    return {"type": "object", "required": ["name", "sha256", "hidden_size", "variant", "seed"],
            "properties": {"name": {"type": "string"}, "sha256": _SHA, "architecture": {"type": "string"},
                           "hidden_size": {"type": "integer", "minimum": 1},
                           "state_dim": {"type": "integer", "minimum": 1}, "variant": {"type": "string"},
                           "seed": {"type": ["integer", "null"]}, "tier": {"type": ["string", "null"]}}}


def _metrics() -> dict:
    return {"type": "object", "required": list(TRACKS), "additionalProperties": False,
            "properties": {name: schema_fragment(track) for name, track in TRACKS.items()}}


OPTIONAL = ("method_kind", "by_position", "error_detail", "interchange_reads")  # fields newer than some committed records


def build_schema() -> dict:
    """The whole record schema (JSON Schema draft 2020-12)."""
    fields = {
        "record_version": {"const": RECORD_VERSION}, "benchmark_version": {"type": "string"},
        "scoring_version": {"type": "string"}, "harness_commit": {"type": "string"},
        "status": {"enum": ["ok", "failed"]},
        "error": {"type": ["string", "null"], "description": "one-line reason when status is failed"},
        "error_detail": {"type": "string", "description": "the failing worker's traceback, truncated (`score --verbose`)"},
        "method": _method(), "model": _model(),
        "split": {"type": "object", "required": ["name", "sha256", "size"],
                  "properties": {"name": {"type": "string"}, "sha256": _SHA, "size": {"type": "integer"}}},
        "plan_seed": {"type": "integer"}, "seed": {"type": "integer"},
        "environment": {"type": "object", "additionalProperties": {"type": "string"}}, "hardware": {"type": "string"},
        "fit": {"type": "object", "required": ["seconds", "sequences_drawn", "budget"],
                "properties": {"seconds": {"type": "number", "minimum": 0},
                               "sequences_drawn": {"type": "integer", "minimum": 0},
                               "budget": {"type": "integer", "minimum": 0},
                               "wall_seconds": {"type": ["number", "null"], "minimum": 0,
                                                "description": "fit process wall time, start-up included"},
                               "serialised_bytes": {"type": ["integer", "null"], "minimum": 0},
                               "declaration": {
                                   "type": "object", "required": ["forms", "parameters", "bytes"],
                                   "description": "a declared method's forms and the exact size of its tensors",
                                   "properties": {"forms": {"type": "object"}, "parameters": {"type": "integer"},
                                                  "bytes": {"type": "integer"}}},
                               "description_length": {
                                   "type": "object", "required": ["bytes", "model_bytes", "ratio"],
                                   "description": "lzma bytes of what scoring receives (fitted bytes and method "
                                                  "folder), measured by the supervisor, against the model's bytes",
                                   "properties": {"bytes": {"type": "integer"}, "model_bytes": {"type": "integer"},
                                                  "ratio": {"type": ["number", "null"]}}},
                               "device": {"type": "string",
                                          "description": "torch device of the fit (--device); absent: cpu"}}},
        "eval_seconds": {"type": "number", "minimum": 0},
        "method_kind": {"enum": ["declared", "open"],
                        "description": "declared: fit returned intervention forms, scored by harness code only; "
                                       "open: the method's code runs at scoring (absent in records before issue 28)"},
        "interchange_reads": {"type": ["boolean", "null"],
                              "description": "INTERCHANGE calls the method's own read (read both states, rewrite); "
                                             "false: a native swap; null: no interchange, or an open method that "
                                             "does not say (method.toml interchange_reads)"},
        "method_parameters": {"type": "integer", "minimum": 0,
                              "description": "learned scalars in the fitted method's state"},
        "tracks_attempted": {"type": "array", "items": {"enum": list(DECLARABLE)}},
        "metrics": _metrics(),
        "by_length": {"type": "object", "additionalProperties": {"$ref": "#/$defs/by_length"}},
        "by_position": {"type": "object", "description": "READ token accuracy and WRITE IIA by position (0-based)",
                        "additionalProperties": {"type": "object", "patternProperties": {
                            "^[0-8]$": {"$ref": "#/$defs/rate"}}, "additionalProperties": False}},
        "kept_by_length": {"type": "object", "description": "scored WRITE / INTERCHANGE cases per length",
                           "additionalProperties": {"type": "object", "additionalProperties": {"type": "integer"}}},
        "bounds": {"type": "object", "required": ["oracle"],
                   "description": "re-encode oracle (READ: the model's own accuracy) and identity floor",
                   "properties": {"oracle": _RATES, "identity": _RATES,
                                  "identity_by_length": {"type": "object",
                                                         "additionalProperties": {"$ref": "#/$defs/by_length"}}}},
        "outcomes_sha256": {"oneOf": [{"type": "null"}, _SHA]}, "record_sha256": _SHA,
    }
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": "https://onionbench.github.io/schema/record-v1.json",
            "title": "onionbench result record v1: one (method, model) cell", "type": "object",
            "required": [f for f in fields if f not in OPTIONAL], "additionalProperties": False,
            "$defs": {"rate": {"type": "number", "minimum": 0, "maximum": 1},
                      "by_length": {"type": "object", "patternProperties": {"^[2-9]$": {"$ref": "#/$defs/rate"}},
                                    "additionalProperties": False},
                      "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
            "properties": fields}


def schema_text() -> str:
    """The file's exact content."""
    return json.dumps(build_schema(), indent=1) + "\n"


if __name__ == "__main__":
    SCHEMA_PATH.write_text(schema_text())
    print(f"wrote {SCHEMA_PATH}")
