import torch


class Cheat:
    """No hypothesis: read = the reference model's own greedy decoding of h."""

    def __init__(self):
        pass

    def fit(self, model, data):
        self.model_ = model
        return self

    def read(self, h, position):
        tokens = self.model_.generate(h)
        return torch.nn.functional.one_hot(tokens[torch.arange(h.shape[0]), position], 30).float()

    def write(self, h, position, token, *, current):
        return h.clone()
