import torch


class Cheat:
    """No hypothesis: write = optimise h until the reference decoder emits the edited sequence."""

    tracks = ("write",)

    def __init__(self):
        pass

    def fit(self, model, data):
        self.decode_ = model.decode  # a bound method: reaches the model through __self__
        self.generate_ = model.generate
        return self

    def write(self, h, position, token, *, current):
        wanted = self.generate_(h)
        wanted[torch.arange(h.shape[0]), position] = token
        x = h.clone().requires_grad_(True)
        opt = torch.optim.Adam([x], lr=0.1)
        with torch.enable_grad():
            for _ in range(30):
                loss = torch.nn.functional.cross_entropy(self.decode_(x, wanted).flatten(0, 1), wanted.flatten())
                opt.zero_grad()
                loss.backward()
                opt.step()
        return x.detach()
