"""Linear-probe baseline: the linear representation hypothesis, read and write.

Hypothesis: the token at position p is a linear feature of the final state h, so a
multinomial logistic regression per position reads it, and moving h along that probe's
own weight vectors changes it.

Read: logits_p(h) = A_p h + c_p, a scikit-learn `LogisticRegression` on standardised
states, folded back into raw-state coordinates (A_p = W_p / sigma).

Write (the choice, documented): change position p's probe logits only for the two tokens
that matter and leave the other 28 as they are:

- the new token t is raised to ``max(logit_t, max_{j != t} logit_j + margin)``;
- the old token is lowered to ``min(logit_current, old logit_t)`` (it swaps places with t);
- if token == current nothing changes (even where the probe misreads: the caller knows).

The edit is the minimum-norm delta achieving exactly that logit change,
``delta = pinv(A_p) @ dlogits``, which lies in the row space (span of the weight vectors)
of position p's probe. Softmax ignores a common shift of all logits, and the multinomial
weights sum to zero over classes, so the logit change is centred first (the shift is
unreachable and irrelevant) and pinv ignores that null direction. Nothing keeps
other positions' probes fixed: under the linear hypothesis their directions are separate.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression


class LinearProbeMethod:
    """Per-position logistic-regression probes; writes along each probe's weight span."""

    def __init__(self, n_samples: int = 20000, C: float = 1.0, max_iter: int = 1000,
                 margin: float = 2.0, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.C = C
        self.max_iter = max_iter
        self.margin = margin
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, model, data) -> LinearProbeMethod:
        """One probe per position on standardised states, then fold to raw-state coordinates."""
        batch = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_, self.vocab_ = int(batch.tokens.shape[1]), int(model.vocab_size)
        x = batch.states.double().numpy()
        mu, sigma = x.mean(0), x.std(0) + 1e-6
        z = (x - mu) / sigma
        weights = np.zeros((self.n_pos_, self.vocab_, x.shape[1]))
        bias = np.zeros((self.n_pos_, self.vocab_))
        for p in range(self.n_pos_):
            rows = (batch.lengths > p).numpy()
            weights[p], bias[p] = self._probe(z[rows], batch.tokens[rows, p].numpy())
        self.weight_ = torch.from_numpy(weights / sigma).float()  # (9, 30, N): logits = A h + c
        self.bias_ = torch.from_numpy(bias - (weights / sigma) @ mu).float()  # (9, 30)
        # rtol drops the one null direction (the weights sum to zero over classes) and any
        # numerically empty ones, which would otherwise blow a tiny logit shift up to a huge edit.
        self.pinv_ = torch.linalg.pinv(self.weight_.double(), rtol=1e-5).float()  # (9, N, 30)
        return self

    def _probe(self, z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(30, N) weights and (30,) bias of one multinomial probe.

        A token absent from the sample (only possible with a tiny `n_samples`) gets zero
        weights and a very negative bias, so it is never read and the shapes stay fixed.
        The default `max_iter` lets lbfgs converge: the most any position needed on eight
        core models (N=48..256, both variants) was 257 iterations, so 1000 leaves room; an
        unconverged probe raises scikit-learn's ConvergenceWarning, deliberately not hidden.
        """
        clf = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.seed).fit(z, y)
        w, b = np.zeros((self.vocab_, z.shape[1])), np.full(self.vocab_, -1e4)
        if len(clf.classes_) == 2:  # binary sklearn model: one row for class 1 vs class 0
            w[clf.classes_[1]], b[clf.classes_[1]] = clf.coef_[0] / 2, clf.intercept_[0] / 2
            w[clf.classes_[0]], b[clf.classes_[0]] = -clf.coef_[0] / 2, -clf.intercept_[0] / 2
        else:
            w[clf.classes_], b[clf.classes_] = clf.coef_, clf.intercept_
        return w, b

    # ------------------------------------------------------- read / write
    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """The probe of each row's position, applied to the raw state."""
        return torch.einsum("bvn,bn->bv", self.weight_[position], h.float()) + self.bias_[position]

    def write(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor, *,
              current: torch.Tensor) -> torch.Tensor:
        """Minimal-norm edit in the probe's weight span: t wins by `margin`, current demoted."""
        logits = self.read(h, position)
        rows = torch.arange(h.shape[0])
        old_t, old_cur = logits[rows, token], logits[rows, current]
        others = logits.scatter(1, token[:, None], float("-inf")).amax(1)
        dlogits = torch.zeros_like(logits)
        dlogits[rows, current] = torch.clamp(old_t - old_cur, max=0.0)
        dlogits[rows, token] = torch.clamp(others + self.margin - old_t, min=0.0)
        dlogits = dlogits - dlogits.mean(1, keepdim=True)  # a common shift is free: drop it
        delta = torch.einsum("bnv,bv->bn", self.pinv_[position], dlogits)
        delta = delta * (token != current)[:, None]  # writing the token already there is a no-op
        return h.float() + delta
