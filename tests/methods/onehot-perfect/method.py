import torch

from benchmark.task import VOCAB_SIZE


class Perfect:
    def __init__(self, shift: int = 0):
        self.shift = shift  # 0: write at p (exact); 1: write at p + 1 (wrong position)

    def fit(self, model, data):
        data.sample(10)
        return self

    def read(self, h, position):
        blocks = h.view(h.shape[0], -1, VOCAB_SIZE)
        return blocks[torch.arange(h.shape[0]), position].clone()

    def write(self, h, position, token, *, current):
        out = h.clone().view(h.shape[0], -1, VOCAB_SIZE)
        target = (position + self.shift) % out.shape[1]
        rows = torch.arange(h.shape[0])
        out[rows, target] = 0.0
        out[rows, target, token] = 1.0
        return out.view_as(h)
