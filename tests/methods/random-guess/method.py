import torch


class RandomGuess:
    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, model, data):
        self.gen_ = torch.Generator().manual_seed(self.seed)
        self.scale_ = data.sample(256).states.std().item()
        return self

    def read(self, h, position):
        return torch.randn(h.shape[0], 30, generator=self.gen_)

    def write(self, h, position, token, *, current):
        return h + self.scale_ * torch.randn(h.shape, generator=self.gen_)
