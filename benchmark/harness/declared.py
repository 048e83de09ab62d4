"""Declared methods: a fit that returns data, scored by harness code only (issue 28).

A method's `fit` may return a `Declaration` instead of `self`: for each operation it
attempts, a form name from `benchmark.harness.forms.FORMS` and that form's tensors. The
harness checks the tensors against the form (unknown form, missing, extra or mis-shaped
tensor: refused, named), stores the declaration as safetensors plus a JSON spec (no pickle),
and the scoring process rebuilds it as a `DeclaredMethod`, a harness class: no module of
the method is imported while it is scored. Its size is exact by construction: only the
declared tensors exist at scoring time.

    from benchmark.harness.declared import Declaration
    return Declaration(read=("linear", {"weight": w, "bias": b}),
                       write=("additive-table", {"table": v}),
                       interchange=("read-write", {}))
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from benchmark.harness.forms import FORMS, onion_peel_read_all
from benchmark.task import MAX_LEN, VOCAB_SIZE

MAGIC = b"ONIONBENCH-DECLARED-1\n"
OPERATIONS = ("read", "write", "interchange")
READ_WRITE = ("read-write", "read-write-stepwise")  # interchanges built from the method's own read and write


class DeclarationError(ValueError):
    """A declaration the harness refuses; the message names what is wrong."""


@dataclass
class Declaration:
    """What a declared method's fit returns: (form name, tensors) per operation it attempts."""

    read: tuple[str, dict[str, torch.Tensor]] | None = None
    write: tuple[str, dict[str, torch.Tensor]] | None = None
    interchange: tuple[str, dict[str, torch.Tensor]] | None = None
    notes: dict[str, str] = field(default_factory=dict)  # free text for the model card (not scored)

    def operations(self) -> dict[str, tuple[str, dict[str, torch.Tensor]]]:
        return {op: getattr(self, op) for op in OPERATIONS if getattr(self, op) is not None}


def check(decl: object, state_dim: int) -> Declaration:
    """The declaration, checked against its forms for a model of `state_dim` (DeclarationError otherwise)."""
    if not isinstance(decl, Declaration):
        raise DeclarationError(f"fit returned {type(decl).__name__}, not a Declaration")
    ops = decl.operations()
    if "read" not in ops:
        raise DeclarationError("a declaration needs a read form (every method reads, PROTOCOL §3)")
    dims = {"N": state_dim, "P": MAX_LEN, "V": VOCAB_SIZE}
    for op, entry in ops.items():
        if not (isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str)
                and isinstance(entry[1], dict)):
            raise DeclarationError(f"{op}: expected (form name, {{tensor name: tensor}}), got {type(entry).__name__}")
        name, tensors = entry
        form = FORMS.get(name)
        if form is None or form.kind != op:
            known = ", ".join(f.name for f in FORMS.values() if f.kind == op)
            raise DeclarationError(f"{op}: unknown form {name!r}; {op} forms: {known}")
        if not all(isinstance(t, torch.Tensor) for t in tensors.values()):
            raise DeclarationError(f"{op} form {name!r}: every value must be a torch.Tensor")
        try:
            form.check(tensors, dims)
        except ValueError as err:
            raise DeclarationError(str(err)) from None
    if "interchange" in ops and ops["interchange"][0] in READ_WRITE and "write" not in ops:
        raise DeclarationError(f"interchange form {ops['interchange'][0]!r} needs a write form")
    return decl


def serialise(decl: Declaration) -> bytes:
    """MAGIC, an 8-byte length, the JSON spec, then one safetensors blob of every tensor (CPU, contiguous)."""
    spec = {op: name for op, (name, _) in decl.operations().items()}
    tensors = {f"{op}.{key}": t.detach().to("cpu").contiguous().clone()
               for op, (_, ts) in decl.operations().items() for key, t in ts.items()}
    head = json.dumps({"forms": spec, "notes": decl.notes}, sort_keys=True).encode()
    return MAGIC + len(head).to_bytes(8, "big") + head + st_save(tensors)


def split(blob: bytes) -> tuple[dict, bytes]:
    """(JSON head, safetensors bytes) of a serialised declaration: how an artifact stores it."""
    if not is_declared(blob):
        raise DeclarationError("not a declaration")
    at = len(MAGIC)
    size = int.from_bytes(blob[at:at + 8], "big")
    return json.loads(blob[at + 8:at + 8 + size]), blob[at + 8 + size:]


def join(head: dict, tensors: bytes) -> bytes:
    """The inverse of `split`: the same bytes `serialise` made (the head is written canonically)."""
    text = json.dumps(head, sort_keys=True).encode()
    return MAGIC + len(text).to_bytes(8, "big") + text + tensors


def is_declared(blob: bytes) -> bool:
    return blob.startswith(MAGIC)


def load(blob: bytes, state_dim: int) -> Declaration:
    """Parse and re-check a serialised declaration (harness code only: safetensors and JSON)."""
    if not is_declared(blob):
        raise DeclarationError("not a declaration")
    at = len(MAGIC)
    size = int.from_bytes(blob[at:at + 8], "big")
    head = json.loads(blob[at + 8:at + 8 + size])
    tensors = st_load(blob[at + 8 + size:])
    ops: dict[str, tuple[str, dict[str, torch.Tensor]]] = {}
    for key, t in tensors.items():
        op, _, name = key.partition(".")
        if op not in head["forms"]:
            raise DeclarationError(f"tensor {key!r} belongs to no declared operation")
        ops.setdefault(op, (head["forms"][op], {}))[1][name] = t
    for op, name in head["forms"].items():
        ops.setdefault(op, (name, {}))
    return check(Declaration(**ops, notes=head.get("notes", {})), state_dim)


def size(decl: Declaration) -> dict:
    """{"parameters", "bytes"}: scalars and bytes of the distinct declared tensors (a tensor two
    forms share, such as the onion's codes, counts once)."""
    seen: dict[str, torch.Tensor] = {}
    for _, tensors in decl.operations().values():
        for t in tensors.values():
            c = t.detach().cpu().contiguous()
            seen.setdefault(hashlib.sha256(c.numpy().tobytes() + str(tuple(c.shape)).encode()).hexdigest(), c)
    return {"parameters": sum(t.numel() for t in seen.values()),
            "bytes": sum(t.numel() * t.element_size() for t in seen.values())}


class DeclaredMethod:
    """A declaration as a method: the harness's own class, calling only the forms."""

    def __init__(self, decl: Declaration) -> None:
        self.decl = decl
        self.tracks = tuple(decl.operations())

    def _run(self, op: str, *args: torch.Tensor) -> torch.Tensor:
        name, tensors = self.decl.operations()[op]
        with torch.no_grad():
            return FORMS[name].fn(tensors, *args)

    def read(self, h: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        return self._run("read", h.float(), position)

    def write(self, h: torch.Tensor, position: torch.Tensor, token: torch.Tensor, *,
              current: torch.Tensor) -> torch.Tensor:
        return self._run("write", h.float(), position, token, current)

    def interchange(self, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        name, _ = self.decl.operations()["interchange"]
        h_base, h_source = h_base.float(), h_source.float()
        if name == "read-write":
            return self._read_once(h_base, h_source, mask)
        if name == "read-write-stepwise":
            return self._read_stepwise(h_base, h_source, mask)
        return self._run("interchange", h_base, h_source, mask)

    def _tokens(self, h: torch.Tensor) -> torch.Tensor:
        """(batch, P) the read form's argmax at every position (the peel reads them in one pass)."""
        name, tensors = self.decl.operations()["read"]
        with torch.no_grad():
            if name == "onion-peel":
                return onion_peel_read_all(tensors, h, MAX_LEN - 1).argmax(-1)
            return torch.stack([self.read(h, torch.full((h.shape[0],), p)).argmax(-1) for p in range(MAX_LEN)], 1)

    def _read_once(self, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Read both states once, then write the source's token at every masked position where
        they differ, with the base's token as `current`. For additive writes (onion, additive
        table) the order of the writes does not matter."""
        base, source = self._tokens(h_base), self._tokens(h_source)
        out = h_base
        for p in range(mask.shape[1]):
            rows = mask[:, p] & (base[:, p] != source[:, p])
            if rows.any():
                pos = torch.full((int(rows.sum()),), p)
                out = out.clone()
                out[rows] = self.write(out[rows], pos, source[rows, p], current=base[rows, p])
        return out

    def _read_stepwise(self, h_base: torch.Tensor, h_source: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The harness's `default_interchange` (an open method without `interchange` gets it):
        position by position, read the source's token and the *current* token of the state
        edited so far, and write. The source never changes, so it is read once up front
        (rows are read independently: the same argmax as reading each subset)."""
        source = self._tokens(h_source)
        out = h_base
        for p in range(mask.shape[1]):
            rows = torch.nonzero(mask[:, p]).flatten()
            if rows.numel() == 0:
                continue
            pos = torch.full((rows.numel(),), p, dtype=torch.int64)
            current = self.read(out[rows], pos).argmax(-1)
            out = out.clone()
            out[rows] = self.write(out[rows], pos, source[rows, p], current=current)
        return out


def as_method(fitted: object, state_dim: int) -> object:
    """What a fit returned, ready to score in this process: a checked `DeclaredMethod` for a
    declaration, the object itself otherwise (research scripts such as long_schedule)."""
    return DeclaredMethod(check(fitted, state_dim)) if isinstance(fitted, Declaration) else fitted
