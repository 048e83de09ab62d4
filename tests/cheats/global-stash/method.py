import torch

_MODEL = None  # filled in by fit: a fresh scoring interpreter never sees it


class Cheat:
    """No hypothesis: the model hides in a module global instead of on the method."""

    def __init__(self):
        pass

    def fit(self, model, data):
        global _MODEL
        _MODEL = model
        self.dim_ = model.state_dim
        return self

    def read(self, h, position):
        tokens = _MODEL.generate(h)
        return torch.nn.functional.one_hot(tokens[torch.arange(h.shape[0]), position], 30).float()

    def write(self, h, position, token, *, current):
        return h.clone()
