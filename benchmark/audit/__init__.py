"""Applications that check a published row: `verify` re-scores it against its records (exactly on
the recording CPU, within the fit-to-fit spread elsewhere, or on a fresh split), `cite` turns
it into BibTeX that credits the method's authors and the benchmark.

They sit on top of the harness (verify runs cells) and the board (cite finds a row), and
nothing below imports them. Import the submodule you need: `cite` must stay torch-free so
`onionbench cite` answers in well under a second.
"""

__all__ = ["cite", "verify"]
