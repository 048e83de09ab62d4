import torch


class Cheat:
    """No hypothesis: fit writes the whole reference model to `stash` (outside the cell's job
    folder, where a later process can find it); read loads it back and decodes h with it.
    Its fitted state is one path string, which no check of the fitted state can object to."""

    tracks = ("read",)

    def __init__(self, stash: str = ""):
        self.stash = stash

    def fit(self, model, data):
        torch.save(model._model, self.stash)
        return self

    def read(self, h, position):
        model = torch.load(self.stash, weights_only=False)
        tokens = model.generate(h)
        return torch.nn.functional.one_hot(tokens[torch.arange(h.shape[0]), position], 30).float()
