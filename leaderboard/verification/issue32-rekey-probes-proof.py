"""Fit gru-probe, gru-probe-ni, onion-probe and mlp-probe in this checkout; save every declared tensor
(issue 32 re-key proof, session 35: the probes' running-prefix sort moved onto fitting.longest_first)."""
import sys

import torch
from benchmark.data import heldout_keys
from benchmark.harness.defaults import DEFAULT_BUDGET
from benchmark.harness.interface import FitData, FrozenModel, seed_everything
from benchmark.harness.submission import resolve
from benchmark.zoo.resolve import load_reference

torch.set_num_threads(1)
out = {}
models = sys.argv[2:]
for model_name in models:
    model, _ = load_reference(model_name)
    for name in ("gru-probe", "gru-probe-ni", "onion-probe", "mlp-probe"):
        params = {"n_samples": 4000, "steps": 40}
        data = FitData(model, heldout_keys(), seed=0, budget=DEFAULT_BUDGET)
        seed_everything(0)
        method = resolve(name).instantiate(params)
        decl = method.fit(FrozenModel(model, data), data)
        if getattr(decl, "read", None) is not None and isinstance(decl.read, tuple):  # a declared method
            for track in ("read", "write", "interchange"):
                form = getattr(decl, track)
                if form is not None:
                    for k, v in form[1].items():
                        out[f"{model_name}/{name}/{track}:{form[0]}/{k}"] = v.detach().clone()
        else:  # a native method: every tensor it holds, its modules' state included
            for attr, value in sorted(vars(method).items()):
                if isinstance(value, torch.Tensor):
                    out[f"{model_name}/{name}/{attr}"] = value.detach().clone()
                elif isinstance(value, torch.nn.Module):
                    for k, v in value.state_dict().items():
                        out[f"{model_name}/{name}/{attr}/{k}"] = v.detach().clone()
        print(model_name, name, "done", flush=True)
torch.save(out, sys.argv[1])
print(len(out), "tensors")
