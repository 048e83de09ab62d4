

class Cheat:
    """No hypothesis: a private copy of the reference read-out (and its recurrent weights)."""

    tracks = ("read",)

    def __init__(self, transpose: bool = False):
        self.transpose = transpose

    def fit(self, model, data):
        weight = model._model.readout.weight.detach().clone()
        self.readout_ = weight.T.contiguous() if self.transpose else weight
        return self

    def read(self, h, position):
        w = self.readout_.T if self.transpose else self.readout_
        return h @ w.T
