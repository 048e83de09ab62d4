import torch

from benchmark.data import load_split
from benchmark.harness.cell import Evaluation, score_fitted
from benchmark.harness.plan import PLAN_SEED


class Cheat:
    """No hypothesis: score candidate answers on the test split from inside fit and keep the best."""

    def __init__(self):
        pass

    def fit(self, model, data):
        self.vocab_ = int(model.vocab_size)
        self.peek_ = score_fitted(self, model, Evaluation(load_split("test"), PLAN_SEED))["metrics"]
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], self.vocab_)
