import torch


class Broken:
    """A working mean-shift method; each gallery entry breaks one thing."""

    def __init__(self):
        pass

    def fit(self, model, data):
        batch = data.sample(3000)
        self.means_ = torch.zeros(9, 30, model.state_dim)
        for p in range(9):
            for t in range(30):
                hit = (batch.lengths > p) & (batch.tokens[:, p] == t)
                if hit.any():
                    self.means_[p, t] = batch.states[hit].mean(0)
        self.model_ = model
        return self

    def read(self, h, position):
        return torch.einsum("bn,btn->bt", h, self.means_[position])

    def write(self, h, position, token, *, current):
        return self.model_.encode(torch.zeros(h.shape[0], 9, dtype=torch.int64), torch.full((h.shape[0],), 2))
