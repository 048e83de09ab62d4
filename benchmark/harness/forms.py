"""Intervention forms: the reviewed, parametric read, write and interchange operations a
*declared* method is made of (issue 28; cf. pyvene's intervention types, MIB's featurizers).

Why forms: at scoring time an *open* method runs arbitrary code, so a re-encoder (a copy of
the model, quantized, distilled) cannot be told from a hypothesis. A declared method's fit
returns data instead, a form name and named tensors per operation, and scoring runs only
the functions below. A form never runs a recurrence over tokens and calls nothing but its
own tensors; each is a small, readable function of h.

Dimensions: N = the model's state size, P = positions (9), V = vocabulary (30). A shape
entry "H" is a free width, bounded by `max_width`. Adding a form is a reviewed change:
one entry in FORMS, its function, and its tests (tests/test_declared.py; the recipe is in
docs/ARCHITECTURE.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

T = torch.Tensor
Shape = tuple[str | int, ...]


@dataclass(frozen=True)
class Form:
    """One operation's parametrisation: its tensors' shapes and its function."""

    name: str
    kind: str  # "read", "write" or "interchange"
    shapes: dict[str, Shape]  # tensor name -> shape in N, P, V, H (a free width) or a number
    fn: Callable[..., T]
    doc: str

    def check(self, tensors: dict[str, T], dims: dict[str, int]) -> None:
        """Refuse missing, extra or mis-shaped tensors, naming them (ValueError)."""
        missing, extra = set(self.shapes) - set(tensors), set(tensors) - set(self.shapes)
        if missing or extra:
            raise ValueError(f"{self.kind} form {self.name!r} takes tensors {sorted(self.shapes)}; "
                             f"missing {sorted(missing)}, extra {sorted(extra)}")
        widths: dict[str, int] = {}
        for key, shape in self.shapes.items():
            got = tuple(tensors[key].shape)
            want = [dims[d] if isinstance(d, str) and d in dims else d for d in shape]
            if len(got) != len(want):
                raise ValueError(f"{self.kind} form {self.name!r}: tensor {key!r} has shape {got}, wants {shape}")
            for g, w in zip(got, want):
                if isinstance(w, str):  # a free width: one value per form, bounded
                    if widths.setdefault(w, g) != g or not 1 <= g <= max_width(dims):
                        raise ValueError(f"{self.kind} form {self.name!r}: width {w} of {key!r} is {g}; it must be "
                                         f"the same in every tensor and at most {max_width(dims)}")
                elif g != w:
                    raise ValueError(f"{self.kind} form {self.name!r}: tensor {key!r} has shape {got}, wants "
                                     f"{tuple(want)}")
            if not tensors[key].dtype.is_floating_point and key != "owner":
                raise ValueError(f"{self.kind} form {self.name!r}: tensor {key!r} must be floating point")


def max_width(dims: dict[str, int]) -> int:
    """The widest hidden layer a form may have: the state size, or 256 for small models (onion's read)."""
    return max(dims["N"], 256)


# --------------------------------------------------------------------- reads
def linear_read(t: dict[str, T], h: T, position: T) -> T:
    """Per-position linear classifier: logits = W[p] h + b[p]."""
    return torch.einsum("bvn,bn->bv", t["weight"][position], h) + t["bias"][position]


def onion_peel_read_all(t: dict[str, T], h: T, last: int) -> T:
    """(batch, last + 1, V): classify position 0, subtract its predicted layer C[token] * S[0], go on.

    The classifier is shared across positions: relu(W1 LayerNorm(r) + b1 + pos[p]), then W2."""
    remainder, out = h, []
    for p in range(last + 1):
        normed = torch.nn.functional.layer_norm(remainder, remainder.shape[-1:], t["ln_weight"], t["ln_bias"])
        logits = torch.relu(normed @ t["w1"].T + t["b1"] + t["pos"][p]) @ t["w2"].T + t["b2"]
        out.append(logits)
        remainder = remainder - t["codes"][logits.argmax(-1)] * t["scales"][p]
    return torch.stack(out, dim=1)


def mlp_read(t: dict[str, T], h: T, position: T) -> T:
    """One hidden layer reads every position at once: W2[p] relu(W1 h + b1) + b2[p] (the paper's MLP decoder)."""
    hidden = torch.relu(h @ t["w1"].T + t["b1"])
    return torch.einsum("bvh,bh->bv", t["w2"][position], hidden) + t["b2"][position]


def onion_peel_read(t: dict[str, T], h: T, position: T) -> T:
    logits = onion_peel_read_all(t, h, int(position.max()) if position.numel() else 0)
    return logits[torch.arange(h.shape[0]), position]


# -------------------------------------------------------------------- writes
def additive_table_write(t: dict[str, T], h: T, position: T, token: T, current: T) -> T:
    """h + V[p, t] - V[p, current]: any additive per-(position, token) code (the WRITE ceiling of additive codes)."""
    return h + t["table"][position, token] - t["table"][position, current]


def onion_write(t: dict[str, T], h: T, position: T, token: T, current: T) -> T:
    """h + S[p] * (C[t] - C[current]): one code per token, scaled per position (the paper's onion)."""
    return h + t["scales"][position] * (t["codes"][token] - t["codes"][current])


def block_replace_write(t: dict[str, T], h: T, position: T, token: T, current: T) -> T:
    """Rotate (z = R h), set position p's block (mask M[p]) to the token's code C[p, t], rotate back.

    A row whose token is already `current` is returned unchanged: writing the token that is
    there must change nothing, and pasting the class mean would (random-subspace's rule)."""
    r, m = t["rotation"], t["mask"][position]
    z = h @ r.T
    edited = (z * (1 - m) + t["codes"][position, token] * m) @ r
    return torch.where((token == current)[:, None], h, edited)


# -------------------------------------------------------------- interchanges
def rotation_swap(t: dict[str, T], h_base: T, h_source: T, mask: T) -> T:
    """DAS: rotate, take each coordinate from the source where its owner position is masked, rotate back.
    `owner` holds each rotated coordinate's position (P = kept from the base)."""
    r, owner = t["rotation"], t["owner"].long()
    positions = mask.shape[1]
    take = torch.cat([mask.float(), torch.zeros(mask.shape[0], 1)], dim=1)[:, owner.clamp(0, positions)]
    zb, zs = h_base @ r.T, h_source @ r.T
    return (zb + take * (zs - zb)) @ r


def pair_rotation_swap(t: dict[str, T], h_base: T, h_source: T, mask: T) -> T:
    """DAS on token pairs (the paper's bigram variables): rotated coordinates owned by pairs
    (j, j+1), each taken from the source where the mask touches its pair (position j or j+1
    masked). `owner` holds each coordinate's pair (P - 1 = kept from the base).

    Why "touches": a pair variable carries both of its tokens, so a swap of position j must
    move both pairs that contain it. Where the mask swaps j but not j + 1, the moved pair also
    carries the source's token at j + 1, which the target does not want: a pure pair code
    cannot do every unigram interchange, and this form says by how much."""
    r, owner = t["rotation"], t["owner"].long()
    pairs = mask.shape[1] - 1
    touched = (mask[:, :-1] | mask[:, 1:]).float()  # (batch, P - 1): pair j touches j or j + 1
    take = torch.cat([touched, torch.zeros(mask.shape[0], 1)], dim=1)[:, owner.clamp(0, pairs)]
    zb, zs = h_base @ r.T, h_source @ r.T
    return (zb + take * (zs - zb)) @ r


def block_swap(t: dict[str, T], h_base: T, h_source: T, mask: T) -> T:
    """h_base with each masked position's block (M[p]) taken from h_source."""
    take = (mask.float() @ t["mask"]).clamp(max=1.0)
    return h_base + take * (h_source - h_base)


FORMS: dict[str, Form] = {f.name: f for f in (
    Form("linear", "read", {"weight": ("P", "V", "N"), "bias": ("P", "V")}, linear_read,
         "per-position linear classifier"),
    Form("onion-peel", "read", {"codes": ("V", "N"), "scales": ("P", "N"), "ln_weight": ("N",), "ln_bias": ("N",),
                                "w1": ("H", "N"), "b1": ("H",), "pos": ("P", "H"), "w2": ("V", "H"), "b2": ("V",)},
         onion_peel_read, "the onion probe: classify, peel the predicted layer, repeat"),
    Form("mlp", "read", {"w1": ("H", "N"), "b1": ("H",), "w2": ("P", "V", "H"), "b2": ("P", "V")}, mlp_read,
         "one ReLU layer of width H <= max(N, 256), read out per position"),
    Form("additive-table", "write", {"table": ("P", "V", "N")}, additive_table_write,
         "h + V[p, t] - V[p, current]"),
    Form("onion", "write", {"codes": ("V", "N"), "scales": ("P", "N")}, onion_write,
         "h + S[p] * (C[t] - C[current])"),
    Form("block-replace", "write", {"rotation": ("N", "N"), "mask": ("P", "N"), "codes": ("P", "V", "N")},
         block_replace_write, "in rotated coordinates, set position p's block to the token's code"),
    Form("rotation-swap", "interchange", {"rotation": ("N", "N"), "owner": ("N",)}, rotation_swap,
         "DAS: rotated coordinates owned by positions, swapped where masked"),
    Form("pair-rotation-swap", "interchange", {"rotation": ("N", "N"), "owner": ("N",)}, pair_rotation_swap,
         "DAS on bigrams: rotated coordinates owned by pairs (j, j+1), swapped where the mask touches the pair"),
    Form("block-swap", "interchange", {"mask": ("P", "N")}, block_swap, "swap each masked position's block"),
    Form("read-write", "interchange", {}, lambda t, h_base, h_source, mask: h_base,
         "read both states once with the read form, write the source's tokens where masked and different"),
    Form("read-write-stepwise", "interchange", {}, lambda t, h_base, h_source, mask: h_base,
         "position by position: read the source's token and the current one of the state edited so far, "
         "write it (the harness's default_interchange for open methods)"),
)}
