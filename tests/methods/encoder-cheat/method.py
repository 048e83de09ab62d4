import torch


class Cheat:
    def __init__(self):
        pass

    def fit(self, model, data):
        self.model_ = model
        return self

    def read(self, h, position):
        return torch.zeros(h.shape[0], 30)

    def write(self, h, position, token, *, current):
        tokens = torch.zeros(h.shape[0], 9, dtype=torch.int64)
        return self.model_.encode(tokens, torch.full((h.shape[0],), 2))
