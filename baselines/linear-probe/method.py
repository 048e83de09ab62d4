"""Linear-probe baseline: the linear representation hypothesis, read and write.

Hypothesis: the token at position p is a linear feature of the final state h, so a
multinomial logistic regression per position reads it, and moving h along that probe's
own weight vectors changes it.

Read: logits_p(h) = A_p h + c_p, a scikit-learn `LogisticRegression` on standardised
states, folded back into raw-state coordinates (A_p = W_p / sigma).

Write (the choice, documented): move h by the difference of the class means of the new
and the current token at position p, projected onto the span of position p's probe
weights: ``delta = P_p (mu[p, t] - mu[p, current])``, P_p the orthogonal projector onto
the row space of A_p. Under the linear hypothesis the token at p lives in that span, and
the class means tell where in it each token sits; the projection keeps the edit out of the
directions the probe says carry nothing about p. The projected means are precomputed at
fit time, so a write is one subtraction.

Why not the minimal-norm edit that realises a chosen logit change (the version 1 rule,
``pinv(A_p) @ dlogits``): raising one logit while holding the other 28 fixed is infeasible
inside a position's few-dimensional subspace, so pinv realised it through the probe's weak,
noise-fitted directions, which lie in other positions' subspaces. On the calibration tier's
linear code that rule wrote at IIA 0.000 (isolate 0.002), although the code is linear by
construction (docs/PROTOCOL.md, "Calibration"). The projection is orthogonal, so unlike
pinv it never amplifies a direction.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from benchmark.harness.declared import Declaration


class LinearProbeMethod:
    """Per-position logistic-regression probes; writes along each probe's weight span."""

    def __init__(self, n_samples: int = 160000, C: float = 1.0, max_iter: int = 1000,
                 span_rtol: float = 1e-5, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.C = C
        self.max_iter = max_iter
        self.span_rtol = span_rtol
        self.seed = seed

    # ------------------------------------------------------------------ fit
    def fit(self, model, data) -> Declaration:
        """One probe per position on standardised states, folded to raw-state coordinates,
        then each position's class means projected onto its probe's weight span."""
        batch = data.sample(self.n_samples)
        # The padded token width is the task's maximum length: no constant to keep in sync.
        self.n_pos_, self.vocab_ = int(batch.tokens.shape[1]), int(model.vocab_size)
        x = batch.states.double().numpy()
        mu, sigma = x.mean(0), x.std(0) + 1e-6
        z = (x - mu) / sigma
        weights = np.zeros((self.n_pos_, self.vocab_, x.shape[1]))
        bias = np.zeros((self.n_pos_, self.vocab_))
        means = np.zeros((self.n_pos_, self.vocab_, x.shape[1]))
        for p in range(self.n_pos_):
            rows = (batch.lengths > p).numpy()
            tokens = batch.tokens[rows, p].numpy()
            weights[p], bias[p] = self._probe(z[rows], tokens)
            means[p] = self._projected_means(x[rows], tokens, weights[p] / sigma)
        self.weight_ = torch.from_numpy(weights / sigma).float()  # (9, 30, N): logits = A h + c
        self.bias_ = torch.from_numpy(bias - (weights / sigma) @ mu).float()  # (9, 30)
        self.means_ = torch.from_numpy(means).float()  # (9, 30, N): P_p mu[p, v]
        return self.declaration()

    def _projected_means(self, x: np.ndarray, tokens: np.ndarray, a: np.ndarray) -> np.ndarray:
        """(30, N) class means of the states, projected onto the row space of the probe `a` (30, N).

        The row space comes from an SVD, keeping singular values above `span_rtol` of the
        largest: this drops the one null direction (multinomial weights sum to zero over
        classes) and numerically empty ones. A token absent from the sample gets the mean of
        all rows, so writing it is a zero shift rather than a jump to the origin.
        """
        _, s, vt = np.linalg.svd(a, full_matrices=False)
        basis = vt[s > self.span_rtol * s.max()]  # (r, N), orthonormal rows
        means = np.tile(x.mean(0), (self.vocab_, 1))
        for v in np.unique(tokens):
            means[v] = x[tokens == v].mean(0)
        return (means @ basis.T) @ basis

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

    # ---------------------------------------------------------- declaration
    def declaration(self) -> Declaration:
        """Read: the probes ("linear"). Write: the projected class-mean differences ("additive-table").
        Interchange: the harness's stepwise read-write, built from the two (what it got as an open method)."""
        return Declaration(read=("linear", {"weight": self.weight_, "bias": self.bias_}),
                           write=("additive-table", {"table": self.means_}),
                           interchange=("read-write-stepwise", {}))
