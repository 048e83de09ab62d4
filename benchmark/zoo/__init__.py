"""Reference models: architectures (`architectures`, `recurrent`, `gru`, `lstm`), the
calibration tier (`calibration`, `coded`, `calibrate`), shared model helpers (`interface`),
training (`train`, `ensemble`), the registry (`registry`, `resolve`; the embedded folders in
`models/`), model cards (`cards`) and the Hub (`hub`).

It imports neither the harness nor the board. Nothing is imported here: import the
submodule you need.
"""

__all__ = ["architectures", "calibrate", "calibration", "cards", "coded", "ensemble", "gru", "hub", "interface",
           "lstm", "recurrent", "registry", "resolve", "train"]
