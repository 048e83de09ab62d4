"""What a fitted method may carry from `fit` to scoring, and how big it is (PROTOCOL §3).

The reference model is for `fit` only. Scoring runs in another process that never receives
the model, so the only way to smuggle it across is inside the fitted method itself. Before
the method is serialised, `inspect_fitted` walks its state and refuses:

- a reference to the `FrozenModel`, the `FitData`, the reference `nn.Module` or any of its
  parameters or buffers (by identity, or a tensor sharing their memory);
- a tensor or array equal to a reference weight, as a copy or a transpose.

Every refusal names the attribute path (``method.decoder_._model.gru``), so the submitter
knows what to drop. A method's own learned or distilled decoder is allowed; its size shows
in `method_parameters`, the number of learned scalars the walk counted.

A second net catches what the walk cannot see (state hidden behind ``__reduce__`` or
``__getstate__``): the pickler itself refuses the same objects while serialising. What this
does not do: detect a weight that was transformed in other ways (scaled, sliced, re-trained
from the same values). Reviewing a submission's code remains part of the maintainers'
acceptance procedure (submissions/README.md).
"""

from __future__ import annotations

import functools
import inspect
import io
import pickle
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from benchmark.errors import OnionbenchError

if TYPE_CHECKING:
    from benchmark.harness.isolation.blobscan import Fingerprints

MAX_DEPTH = 40  # deeper than any honest method's state; stops cycles through odd containers


class ForbiddenStateError(OnionbenchError):
    """The fitted method holds the reference model or a copy of its weights."""


@dataclass(frozen=True)
class Forbidden:
    """What the fitted method may not hold: objects by identity, and weight values."""

    objects: tuple[object, ...]  # FrozenModel, FitData, the reference nn.Module
    weights: tuple[torch.Tensor, ...]  # the reference model's parameters and buffers

    @classmethod
    def of(cls, model: torch.nn.Module, *extra: object) -> Forbidden:
        tensors = tuple(t.detach() for t in (*model.parameters(), *model.buffers()))
        return cls(objects=(model, *extra, *tensors), weights=tensors)

    def storages(self) -> set[tuple[str, int]]:
        return {_storage_ptr(t) for t in self.weights if t.numel()}


def _storage_ptr(t: torch.Tensor) -> tuple[str, int]:
    """Where a tensor's memory is: (device, address); addresses of two devices never compare equal."""
    return str(t.device), t.untyped_storage().data_ptr()


def _children(obj: object) -> Iterator[tuple[str, object]]:
    """(path suffix, child) pairs of containers and plain objects; tensors and arrays are leaves."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            yield f"[{key!r}]", value
    elif inspect.ismethod(obj):  # a bound method carries its object: `model.decode` carries the model
        yield ".__self__", obj.__self__
    elif inspect.isfunction(obj):  # a closure carries what it closed over
        for i, cell in enumerate(obj.__closure__ or ()):
            yield f".__closure__[{i}]", cell.cell_contents if cell.cell_contents is not None else None
        yield ".__defaults__", obj.__defaults__
    elif isinstance(obj, functools.partial):
        yield ".func", obj.func
        yield ".args", obj.args
        yield ".keywords", obj.keywords
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, value in enumerate(obj):
            yield f"[{i}]", value
    else:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            for key, value in state.items():
                yield f".{key}", value
        for slot in getattr(type(obj), "__slots__", ()) or ():
            if isinstance(slot, str) and hasattr(obj, slot):
                yield f".{slot}", getattr(obj, slot)


def _is_leaf(obj: object) -> bool:
    return obj is None or isinstance(obj, (str, bytes, int, float, complex, bool, type, torch.dtype, torch.device,
                                           types.ModuleType, types.BuiltinFunctionType))


class _Walk:
    """One pass over the object graph: refusals and the learned-scalar count."""

    def __init__(self, forbidden: Forbidden) -> None:
        self.forbidden_ids = {id(o) for o in forbidden.objects}
        self.storages = forbidden.storages()
        self.weights = forbidden.weights
        self.seen: set[int] = set()
        self.counted: set[tuple[object, int]] = set()
        self.scalars = 0

    def visit(self, obj: object, path: str, depth: int = 0) -> None:
        if _is_leaf(obj) or id(obj) in self.seen or depth > MAX_DEPTH:
            return
        self.seen.add(id(obj))
        if id(obj) in self.forbidden_ids:
            raise ForbiddenStateError(f"{path} references the reference model ({type(obj).__name__}); the model "
                                      "is for fit only: keep only what your hypothesis learned")
        if isinstance(obj, torch.Tensor):
            self._tensor(obj.detach(), path)
        elif isinstance(obj, np.ndarray) and obj.dtype != object:
            self._tensor(torch.from_numpy(np.ascontiguousarray(obj)), path, count_key=(id(obj), obj.size))
        else:
            for suffix, child in _children(obj):
                self.visit(child, path + suffix, depth + 1)

    def _tensor(self, t: torch.Tensor, path: str, count_key: tuple[object, int] | None = None) -> None:
        if t.numel() and t.device.type != "meta" and _storage_ptr(t) in self.storages:
            raise ForbiddenStateError(f"{path} shares memory with a reference-model weight; the model is for "
                                      "fit only: learn your own parameters instead")
        if any(_same_values(t, w) for w in self.weights):
            raise ForbiddenStateError(f"{path} is a copy of a reference-model weight (or its transpose); the "
                                      "model is for fit only: learn your own parameters instead")
        key = count_key or ((_storage_ptr(t), t.numel()) if t.numel() else (id(t), 0))
        if key not in self.counted and (t.is_floating_point() or t.is_complex() or t.dtype in _INT_DTYPES):
            self.counted.add(key)
            self.scalars += t.numel()


_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)


def _same_values(t: torch.Tensor, w: torch.Tensor) -> bool:
    """Equal to the weight, or to its transpose (a 2-D weight read the other way round)."""
    if t.numel() != w.numel() or t.numel() < 2 or not t.is_floating_point():
        return False
    t = t.to(device=w.device, dtype=w.dtype)  # a method fitted on a GPU may hold a CPU copy, or the reverse
    if t.shape == w.shape and torch.equal(t, w):
        return True
    return w.dim() == 2 and t.shape == w.T.shape and torch.equal(t, w.T)


def inspect_fitted(method: object, forbidden: Forbidden) -> int:
    """Refuse forbidden state (ForbiddenStateError naming the path); return the learned-scalar count."""
    walk = _Walk(forbidden)
    walk.visit(method, "method")
    return walk.scalars


class _GuardedPickler(pickle.Pickler):
    """The second net: refuses forbidden objects wherever the pickler meets them.

    It also writes every tensor as a CPU tensor: a method fitted on a GPU
    (`onionbench score --device`) is scored on the CPU, and a CUDA tensor's pickle would
    not load in a process without one.
    """

    def __init__(self, file: io.BytesIO, forbidden: Forbidden) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.forbidden_ids = {id(o) for o in forbidden.objects}

    def reducer_override(self, obj: object) -> Any:  # pickle's own return type
        # A Parameter pickles its `.data`, a plain tensor, which comes back through here.
        if type(obj) is torch.Tensor and obj.device.type != "cpu":
            return obj.detach().cpu().requires_grad_(obj.requires_grad).__reduce_ex__(pickle.HIGHEST_PROTOCOL)
        return NotImplemented

    def persistent_id(self, obj: object) -> None:
        if id(obj) in self.forbidden_ids:
            raise ForbiddenStateError(f"the fitted method's pickled state contains the reference model "
                                      f"({type(obj).__name__}, reached through __reduce__/__getstate__); the "
                                      "model is for fit only")
        return None


def fingerprints(model: torch.nn.Module) -> Fingerprints:
    """The reference model's weights as raw bytes (matrices also transposed) and the modules whose
    objects a fitted method may not carry, for the supervisor's trusted scan (`blobscan`)."""
    from benchmark.harness.isolation.blobscan import Fingerprints

    weights = []
    for name, t in (*model.named_parameters(), *model.named_buffers()):
        t = t.detach().float().contiguous()
        weights.append((name, t.numpy().tobytes()))
        if t.dim() == 2:
            weights.append((f"{name} (transposed)", t.T.contiguous().numpy().tobytes()))
    module = type(model).__module__  # FrozenModel and FitData hold the model: pickling them writes it too
    return Fingerprints(tuple(weights), () if module in ("builtins", "__main__") else (module,))


def serialise(method: object, forbidden: Forbidden) -> tuple[bytes, int]:
    """Check, then pickle the fitted method; returns (bytes, method_parameters)."""
    size = inspect_fitted(method, forbidden)
    buffer = io.BytesIO()
    try:
        _GuardedPickler(buffer, forbidden).dump(method)
    except ForbiddenStateError:
        raise
    except Exception as err:  # noqa: BLE001 - any pickling failure is the method's
        raise ForbiddenStateError(f"the fitted method cannot be pickled ({type(err).__name__}: {err}); keep its "
                                  "fitted state to tensors, arrays and plain objects (no lambdas, open files or "
                                  "generators)") from err
    return buffer.getvalue(), size
