"""Proof that `FitData.sample` encoding in chunks of `ENCODE_CHUNK` rows gives bit-identical
states to one encoder call over all rows (session 37), on every model of the zoo.

Why: a sealed fit of linear-probe at 160,000 states failed on gru-h256-ar-s0 with the address
space limit (nn.GRU's all-steps input projection), so `sample` now encodes in chunks. A
committed fit is unchanged only if no state moves by one bit; the largest committed pool is
100,000 and the new defaults reach 200,000, so both are checked.

    python leaderboard/verification/encode-chunks-proof.py 100000 200000
"""
import sys

import torch
from benchmark.data import heldout_keys
from benchmark.harness.interface import ENCODE_CHUNK, FitData
from benchmark.zoo.resolve import availability, load_reference, load_registry

torch.set_num_threads(1)  # as in a sealed fit
failed = 0
for n in map(int, sys.argv[1:]):
    for name in sorted(k for k, e in load_registry().items() if availability(e) == "embedded"):  # the core and calibration tiers
        model, _ = load_reference(name)
        batch = FitData(model, heldout_keys(), seed=0, budget=10**7).sample(n)  # chunked
        with torch.no_grad():
            whole = model.encode(batch.tokens, batch.lengths)  # one call, as before
        same = torch.equal(batch.states, whole)
        failed += not same
        print(f"{name} n={n} chunk={ENCODE_CHUNK}: {'IDENTICAL' if same else 'DIFFERS'}", flush=True)
print("ALL IDENTICAL" if not failed else f"{failed} DIFFER")
sys.exit(1 if failed else 0)
