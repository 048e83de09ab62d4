"""The sequence-repetition task of PROTOCOL §1: vocabulary, special ids and lengths.

Every other module takes these numbers from here so that a protocol change is one edit.
"""

VOCAB_SIZE = 30  # real tokens, ids 0..29; the read-out predicts only these
SOS = 30  # first decoder input in both variants
NO_INPUT = 31  # decoder input after the first step in the `ni` variant
MIN_LEN = 2
MAX_LEN = 9
VARIANTS = ("ar", "ni")  # autoregressive decoder / no-input decoder
BENCHMARK_VERSION = "1"  # PROTOCOL version: splits, metrics and records are tied to it


def embedding_rows(variant: str) -> int:
    """Input ids a variant's embedding table needs: the 30 tokens and SOS, plus NO_INPUT for `ni`."""
    return NO_INPUT + 1 if variant == "ni" else SOS + 1
