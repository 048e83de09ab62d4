from pathlib import Path

import pyarrow.parquet as pq
import torch


def _public_test_split():
    """The shipped test split, read straight from the package's Parquet file."""
    import benchmark.data as data  # where the public split ships

    table = pq.read_table(Path(data.__file__).parent / "splits" / "test-v1.parquet").to_pydict()
    tokens = torch.zeros(len(table["length"]), 9, dtype=torch.int64)
    for i, row in enumerate(table["tokens"]):
        tokens[i, : len(row)] = torch.tensor(row)
    return tokens, torch.tensor(table["length"])


class Cheat:
    """No hypothesis: remember (state -> tokens) for every public test sequence."""

    tracks = ("read",)

    def __init__(self):
        pass

    def fit(self, model, data):
        tokens, lengths = _public_test_split()
        with torch.no_grad():
            self.states_ = model._model.encode(tokens, lengths)  # the private encoder: no budget, no refusal
        self.tokens_ = tokens
        self.fallback_ = torch.zeros(30)
        return self

    def read(self, h, position):
        distance = torch.cdist(h, self.states_, compute_mode="donot_use_mm_for_euclid_dist")
        best = distance.argmin(1)
        found = distance[torch.arange(h.shape[0]), best] < 1e-5
        logits = torch.nn.functional.one_hot(self.tokens_[best, position], 30).float()
        return torch.where(found[:, None], logits, self.fallback_.expand(h.shape[0], 30))
