"""Isolation: how a cell runs method code it did not write (issue 32: one folder for it).

- `launch`: the harness's side: starts the supervisor, sends the job, reads the answers
  (`Limits`, `run_isolated`, `run_sealed_check`);
- `supervisor`: starts the fit and scoring workers, relays frames, scans the fitted bytes,
  enforces the time limit and reaps every process;
- `worker`: one fit or scoring process, sealed before any method code runs;
- `bwrap` (namespaces), `sandbox` (Landlock), `attest` (what a worker proves), `channel`
  (the frames), `blobscan` (the model's weights in the fitted bytes).

This file imports nothing: the supervisor and the workers import only the modules they use.
"""

__all__ = ["attest", "blobscan", "bwrap", "channel", "launch", "sandbox", "supervisor", "worker"]
