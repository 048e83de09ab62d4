"""Fit linear-das, linear-das-bigram and onion in this checkout; save every tensor (issue 32 re-key proof)."""
import sys
import torch
from benchmark.data import heldout_keys
from benchmark.harness.defaults import DEFAULT_BUDGET
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.harness.submission import resolve
from benchmark.zoo.resolve import load_reference

torch.set_num_threads(1)
out = {}


def decl_tensors(tag, decl):
    for track in ("read", "write", "interchange"):
        form = getattr(decl, track)
        if form is None:
            continue
        name, tensors = form
        for k, v in tensors.items():
            out[f"{tag}/{track}:{name}/{k}"] = v.detach().clone()


def flatten(prefix, obj):
    if isinstance(obj, torch.Tensor):
        out[prefix] = obj.detach().clone()
    elif isinstance(obj, dict):
        for k, v in obj.items():
            flatten(f"{prefix}/{k}", v)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            flatten(f"{prefix}/{i}", v)


def setup(model):
    data = FitData(model, heldout_keys(), seed=0, budget=DEFAULT_BUDGET)
    seed_everything(0)
    return FrozenModel(model, data), data


for model_name in ("gru-h48-ar-s0", "gru-h64-ni-s0"):
    model, _ = load_reference(model_name)
    cases = [("linear-das", {"steps": 100}), ("linear-das", {"steps": 60, "init": "random", "schedule": "constant"}),
             ("linear-das", {"steps": 40, "lengths": [9]}),
             ("linear-das-bigram", {"steps": 40}),
             ("onion", {"steps": 40, "read_steps": 40}), ("onion", {"steps": 30, "read_steps": 30, "clip": 1.0, "warmup": 0.1})]
    for name, params in cases:
        frozen, data = setup(model)
        decl = resolve(name).instantiate(params).fit(frozen, data)
        decl_tensors(f"{model_name}/{name}/fit/{sorted(params.items())}", decl)
        print(model_name, name, params, "fit done", flush=True)
    runs = [("linear-das", {"lr": 1e-3, "weight_decay": 0.1, "init": "random", "schedule": "constant"}),
            ("linear-das", {"lr": 1e-3, "weight_decay": 0.1, "init": "random", "schedule": "constant", "lengths": [9]}),
            ("onion", {"lr": 1e-3, "weight_decay": 0.1, "lin_init": 1.0, "read_steps": 30}),
            ("onion", {"lin_init": 1.0, "read_steps": 30, "clip": 1.0})]
    for name, params in runs:
        spec = resolve(name)
        method = spec.instantiate(params)
        data = FitData(model, heldout_keys(), seed=0, budget=DEFAULT_BUDGET)
        seed_everything(0)
        run = method.resumable(FrozenModel(model, data), data)
        tag = f"{model_name}/{name}/run/{sorted(params.items())}"
        run.steps(20)
        state = run.state()
        run.steps(20)
        flatten(f"{tag}/state20", state)
        flatten(f"{tag}/state40", run.state())
        decl_tensors(f"{tag}/fitted40", run.fitted())
        print(model_name, name, params, "run done", flush=True)
torch.save(out, sys.argv[1])
print(len(out), "tensors")
