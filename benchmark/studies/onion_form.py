"""The onion's form, per model: what magnitude profile an onion write learns, and what it costs to restrict it.

Issue 30 item 4. The onion hypothesis says a position's token is written as a scaled
embedding, h' = h + (tanh E[t] - tanh E[cur]) * s(p), with the positions told apart by
the *size* of s(p). Three forms of s are fitted through the frozen decoder, by one trainer
with the onion baseline's recipe (so they differ only in the form):

- ``magnitude``: s(p) = gamma**p * s0, one scalar gamma and one channel profile s0: the
  strict onion, every position on the same channels, only the magnitude differs;
- ``paper``: s(p) = g * gamma**p + p * lin + b, per-channel g, gamma, lin, b (the paper's
  form and the `onion` baseline's);
- ``free``: the paper's form plus a free (9, N) offset: any profile over positions.

For each fit it records WRITE on `valid` (never `test`), the typical size of each
position's layer, mean over tokens of ||tanh(E[t]) * s(p)||, and how much positions share
channels, the mean cosine between |s(p)| and |s(q)| over p != q (near 1: the same channels
at different magnitudes; low: positions on different channels, closer to subspaces). Each
WRITE is set against the `additive-table` baseline's, fitted and scored the same way: a
free h + V[p, t] - V[p, cur], the ceiling of any additive code. "WRITE relative to the
table" is then how much of what an additive edit can do each onion form keeps.

Data: leaderboard/onion-form/MODEL.json, one per model, written atomically and skipped when
already there for the same study version, model weights and params (resumable). Figures:
one SVG per family (architecture, N, variant), drawn from the data alone (`render_family`),
and checked for freshness by the tests like the other generated artifacts.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from benchmark.harness.fitting import train_minibatches
from benchmark.records import ModelProvenance, write_atomic
from benchmark.zoo.architectures import parse_name

__all__ = ["FORMS", "OUT", "STUDY_VERSION", "family_of", "fit_form", "load_all", "measure", "paper_section",
           "render_all", "render_family"]

STUDY_VERSION = 1  # bump when the trainer or a measurement changes: older files are then refitted
FORMS = ("magnitude", "paper", "free")
OUT = Path(__file__).resolve().parents[2] / "leaderboard" / "onion-form"
# The onion baseline's write recipe (baselines/onion/method.toml), restated so the study does
# not depend on a method folder's private code; `params` in each data file records what ran.
DEFAULTS = {"steps": 1200, "batch_size": 256, "lr": 6e-2, "pool_size": 20000, "lin_init": 0.1, "seed": 0}


class Scales(nn.Module):
    """s(p) for p < n_pos, (n_pos, N), in one of `FORMS`, at the paper's initialisation
    (g = 1, gamma = 0.9, lin = lin_init, b = 0; the magnitude form's s0 = 1, gamma = 0.9)."""

    def __init__(self, form: str, n: int, n_pos: int, lin_init: float) -> None:
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"unknown form {form!r}; one of {', '.join(FORMS)}")
        self.form, self.n_pos = form, n_pos
        if form == "magnitude":
            self.s0 = nn.Parameter(torch.ones(n))
            self.gamma = nn.Parameter(torch.tensor(0.9))
            return
        self.g = nn.Parameter(torch.ones(n))
        self.gamma = nn.Parameter(torch.full((n,), 0.9))
        self.lin = nn.Parameter(torch.full((n,), float(lin_init)))
        self.b = nn.Parameter(torch.zeros(n))
        self.offset = nn.Parameter(torch.zeros(n_pos, n), requires_grad=form == "free")

    def forward(self) -> torch.Tensor:
        powers = [torch.ones_like(self.gamma)]
        for _ in range(self.n_pos - 1):  # repeated product: a learned gamma may turn negative
            powers.append(powers[-1] * self.gamma)
        if self.form == "magnitude":
            return torch.stack(powers)[:, None] * self.s0
        p = torch.arange(self.n_pos, dtype=torch.float32)[:, None]
        return self.g * torch.stack(powers) + p * self.lin + self.b + self.offset


def fit_form(model: Any, data: Any, form: str, params: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(codes tanh(E) (V, N), scales s (9, N)) of one onion write of `form`, trained through the decoder.

    The onion baseline's objective: on a training state, ask for a uniform random token at a
    random position < L, decode the edited state (teacher-forced on the wanted sequence) and
    minimise its cross-entropy; wanted sequences that are held out are dropped.
    """
    gen = torch.Generator().manual_seed(params["seed"])
    pool = data.sample(params["pool_size"])
    n_pos, vocab, n = int(pool.tokens.shape[1]), int(model.vocab_size), int(model.state_dim)
    embedding = nn.Parameter(torch.randn(vocab, n, generator=gen))
    scale_of: nn.Module = Scales(form, n, n_pos, params["lin_init"])
    valid = torch.arange(n_pos)[None, :]

    def loss_of(idx: torch.Tensor) -> torch.Tensor:
        tokens, lengths, h = pool.tokens[idx], pool.lengths[idx], pool.states[idx]
        position = (torch.rand(idx.shape[0], generator=gen) * lengths).long()
        rows = torch.arange(idx.shape[0])
        current, token = tokens[rows, position], torch.randint(0, vocab, (idx.shape[0],), generator=gen)
        wanted = tokens.clone()
        wanted[rows, position] = token
        keep = ~data.is_heldout(wanted, lengths)
        codes = torch.tanh(embedding)
        edited = h + (codes[token] - codes[current]) * scale_of()[position]
        logits = model.decode(edited[keep], wanted[keep])
        mask = valid < lengths[keep][:, None]
        return nn.functional.cross_entropy(logits[mask], wanted[keep][mask])

    train_minibatches([embedding, *(p for p in scale_of.parameters() if p.requires_grad)], loss_of,
                      pool.states.shape[0], steps=params["steps"], batch_size=params["batch_size"],
                      lr=params["lr"], weight_decay=0.0, generator=gen)
    with torch.no_grad():
        return torch.tanh(embedding).detach(), scale_of().detach()


def shape_of(codes: torch.Tensor, scales: torch.Tensor) -> dict:
    """Layer size per position (mean over tokens of ||codes[t] * s(p)||) and channel sharing."""
    layers = (codes[:, None, :] * scales[None]).norm(dim=-1).mean(0)
    a = scales.abs() / scales.abs().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    cos = (a @ a.T)[~torch.eye(scales.shape[0], dtype=torch.bool)]
    return {"layer_size": [round(float(x), 6) for x in layers], "sharing": round(float(cos.mean()), 4)}


def measure(name: str, params: dict | None = None, *, score: Callable | None = None,
            table_write: Callable | None = None) -> dict:
    """The study's data for one registry model: each form's WRITE on `valid` and its shape,
    and the additive table's WRITE. `score(codes, scales, model, valid)` and
    `table_write(model, provenance, valid)` default to the harness's in-process scoring on
    `valid` (tests pass cheaper ones). The model and the split are loaded once for all four fits."""
    from benchmark.data import heldout_keys, load_split
    from benchmark.harness.cell import Evaluation
    from benchmark.harness.defaults import DEFAULT_BUDGET
    from benchmark.harness.interface import FitData, FrozenModel, seed_everything
    from benchmark.harness.plan import PLAN_SEED
    from benchmark.zoo.resolve import load_reference

    params = {**DEFAULTS, **(params or {})}
    model, provenance = load_reference(name)
    valid = Evaluation(load_split("valid"), PLAN_SEED, name="valid")
    score, table_write = score or _valid_write, table_write or _table_write_on_valid
    forms = {}
    for form in FORMS:
        seed_everything(params["seed"])
        data = FitData(model, heldout_keys(), seed=params["seed"], budget=DEFAULT_BUDGET)
        codes, scales = fit_form(FrozenModel(model, data), data, form, params)
        forms[form] = {"write_iia": score(codes, scales, model, valid), **shape_of(codes, scales)}
    return {"study_version": STUDY_VERSION, "model": name, "model_sha256": provenance["sha256"],
            "architecture": provenance["architecture"], "hidden_size": provenance["hidden_size"],
            "variant": provenance["variant"], "seed": provenance["seed"], "split": "valid", "params": params,
            "forms": forms, "table_write_iia": table_write(model, provenance, valid)}


def _valid_write(codes: torch.Tensor, scales: torch.Tensor, model: nn.Module, valid: Any) -> float:
    """WRITE IIA on `valid` of the harness's "onion" write form (a zero linear read rides along:
    a declaration must read, and READ is not what is measured here)."""
    from benchmark.harness.cell import score_fitted
    from benchmark.harness.declared import Declaration, as_method

    n_pos, vocab, n = scales.shape[0], codes.shape[0], codes.shape[1]
    decl = Declaration(read=("linear", {"weight": torch.zeros(n_pos, vocab, n), "bias": torch.zeros(n_pos, vocab)}),
                       write=("onion", {"codes": codes, "scales": scales}))
    out = score_fitted(as_method(decl, n), model, valid)
    return round(float(out["metrics"]["write"]["iia"]), 4)


def _table_write_on_valid(model: nn.Module, provenance: ModelProvenance, valid: Any) -> float:
    """The additive-table baseline's WRITE IIA on `valid` at its defaults, fitted in this process
    (a trusted baseline, discovered like any method folder)."""
    from benchmark.harness.cell import run_cell
    from benchmark.harness.submission import resolve

    record = run_cell(resolve("additive-table"), model, provenance, isolate=False, evaluation=valid)
    if record["status"] != "ok":
        raise RuntimeError(f"additive-table on {provenance['name']} failed: {record['error']}")
    return round(float(record["metrics"]["write"]["iia"]), 4)


def is_current(path: Path, name: str, sha256: str, params: dict) -> bool:
    """Whether `path` already holds this study's data for these weights and params."""
    if not path.exists():
        return False
    data = json.loads(path.read_text())
    return (data.get("study_version") == STUDY_VERSION and data.get("model_sha256") == sha256
            and data.get("params") == {**DEFAULTS, **params})


def family_of(model: str) -> str | None:
    """"gru-h64-ar" for "gru-h64-ar-s2"; None for a name outside the zoo's scheme."""
    parts = parse_name(model)
    return f"{parts.architecture}-h{parts.hidden}-{parts.variant}" if parts else None


def load_all(folder: Path = OUT) -> dict[str, list[dict]]:
    """family -> its models' data, sorted by seed."""
    named = [(parts, data) for data in (json.loads(p.read_text()) for p in folder.glob("*.json"))
             if (parts := parse_name(data["model"])) is not None]
    fams: dict[str, list[dict]] = {}
    for parts, data in sorted(named, key=lambda pd: pd[0]):  # architecture, N, variant, seed: the zoo's order
        fams.setdefault(f"{parts.architecture}-h{parts.hidden}-{parts.variant}", []).append(data)
    return fams


COLOURS = {"magnitude": "C3", "paper": "C0", "free": "C2"}


def render_family(family: str, models: list[dict]) -> str:
    """One SVG: each form's layer size against position (log scale), a line per seed; the legend
    gives each form's WRITE relative to the additive table and its channel sharing (seed means).
    Deterministic (fixed hash salt, no date), so unchanged data gives an unchanged file."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context({"svg.hashsalt": "onionbench", "svg.fonttype": "none", "font.size": 9}):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.2, 3.2))
        for form in FORMS:
            rel = [m["forms"][form]["write_iia"] / m["table_write_iia"] for m in models if m["table_write_iia"] > 0]
            share = [m["forms"][form]["sharing"] for m in models]
            label = (f"{form}: WRITE {_mean(rel):.2f} of the table, sharing {_mean(share):.2f}" if rel
                     else f"{form}: sharing {_mean(share):.2f}")
            for i, m in enumerate(models):
                size = m["forms"][form]["layer_size"]
                ax.plot(range(len(size)), size, marker="o", markersize=3, color=COLOURS[form], alpha=0.8,
                        label=label if i == 0 else None)
        ax.set_yscale("log")
        ax.set_xlabel("position p")
        ax.set_ylabel("layer size, mean over tokens of |tanh E[t] * s(p)|")
        seeds = ", ".join(str(m["seed"]) for m in models)
        ax.set_title(f"{family} (seeds {seeds}; valid split)", fontsize=9)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs) if xs else math.nan


def report(families: dict[str, list[dict]]) -> str:
    """REPORT.md: one row per family, seed means, generated from the data alone."""
    lines = ["# The onion's form, per model family", "",
             "Generated by `python -m benchmark.studies.onion_form --report` from `leaderboard/onion-form/*.json`",
             "(issue 30 item 4; the module's docstring says what is measured). All on the `valid` split.",
             "WRITE rel. = the form's WRITE IIA / the additive table's (a free h + V[p, t] - V[p, cur]).",
             "Sharing = mean cosine between |s(p)| and |s(q)|, p != q (1: the same channels at every position).",
             "Decay = the median ratio of successive layer sizes, size(p+1) / size(p) (below 1: later positions smaller).",
             "", "| family | seeds | table WRITE | magnitude WRITE rel. | paper WRITE rel. | free WRITE rel. "
             "| sharing (magnitude / paper / free) | decay (paper / free) |", "|---|---|---|---|---|---|---|---|"]
    for fam, models in families.items():
        rel = {f: _mean([m["forms"][f]["write_iia"] / m["table_write_iia"] for m in models if m["table_write_iia"] > 0])
               for f in FORMS}
        share = " / ".join(f"{_mean([m['forms'][f]['sharing'] for m in models]):.2f}" for f in FORMS)
        decay = " / ".join(f"{_mean([_decay(m['forms'][f]['layer_size']) for m in models]):.2f}" for f in ("paper", "free"))
        lines.append(f"| {fam} | {', '.join(str(m['seed']) for m in models)} "
                     f"| {_mean([m['table_write_iia'] for m in models]):.3f} | {rel['magnitude']:.2f} "
                     f"| {rel['paper']:.2f} | {rel['free']:.2f} | {share} | {decay} |")
    return "\n".join(lines) + "\n"


def _decay(sizes: list[float]) -> float:
    ratios = sorted(b / a for a, b in zip(sizes, sizes[1:]) if a > 0)
    return ratios[len(ratios) // 2] if ratios else math.nan


def paper_section(families: dict[str, list[dict]]) -> str:
    """docs/PAPER_FINDING.md's section on the onion's form: the ranges per variant, from the data alone."""
    if not families:
        return "## The onion's form\n\nNo onion-form data committed yet (python -m benchmark.studies.onion_form)."

    def span(variant: str, value: Callable[[dict], float]) -> str:
        xs = [_mean([value(m) for m in models]) for fam, models in families.items() if fam.endswith(f"-{variant}")]
        return f"{min(xs):.2f}-{max(xs):.2f}" if xs else "n/a"

    def rel(form: str) -> Callable[[dict], float]:
        return lambda m: m["forms"][form]["write_iia"] / m["table_write_iia"]

    lines = []
    for variant in ("ar", "ni"):
        lines.append(
            f"- **`{variant}` models** ({sum(f.endswith('-' + variant) for f in families)} families): the strict "
            f"magnitude code keeps {span(variant, rel('magnitude'))} of the additive table's WRITE, the paper's "
            f"form {span(variant, rel('paper'))}, the free form {span(variant, rel('free'))}. The free form's "
            f"positions share channels at {span(variant, lambda m: m['forms']['free']['sharing'])} (1 = the same "
            f"channels at every position) and its layers change by a median factor of "
            f"{span(variant, lambda m: _decay(m['forms']['free']['layer_size']))} per position.")
    return ("## The onion's form (benchmark/studies/onion_form.py, `valid` split)\n\n"
            "An onion write fitted through the decoder under three forms of its scale s(p): the strict magnitude "
            "code gamma^p * s0 (one channel profile for every position), the paper's g * gamma^p + p * lin + b, "
            "and a free one; each form's WRITE relative to the `additive-table` reference (the ceiling of any "
            "additive edit); ranges over the GRU and LSTM families of the core tiers (seed means per family; "
            "per family: leaderboard/onion-form/REPORT.md). One trainer and one schedule (the onion baseline's) "
            "for all three: a form that needs a longer schedule is under-stated.\n\n" + "\n".join(lines))


def render_all(folder: Path = OUT) -> dict[Path, str]:
    """Every generated file of the study (figures and REPORT.md) as text, from the data."""
    families = load_all(folder)
    out = {folder / f"{fam}.svg": render_family(fam, models) for fam, models in families.items()}
    out[folder / "REPORT.md"] = report(families)
    return out


def main(argv: list[str] | None = None) -> None:
    """python -m benchmark.studies.onion_form [MODEL ...] [--threads 1] [--report]"""
    import argparse

    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m benchmark.studies.onion_form", description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="*", help="registry model names (each fit is resumable per model)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: the machine is shared)")
    parser.add_argument("--report", action="store_true", help="(re)draw the figures and REPORT.md from the data")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from benchmark.zoo.registry import load_registry

    registry = load_registry()
    for name in tqdm(args.models, desc="onion form", unit="model", disable=not args.models):
        if name not in registry:
            raise SystemExit(f"error: unknown model {name!r}; see `onionbench models list`")
        path = OUT / f"{name}.json"
        if is_current(path, name, registry[name].sha256 or "", {}):
            continue
        write_atomic(path, measure(name))
    if args.report or args.models:
        for path, text in render_all().items():
            path.write_text(text)


if __name__ == "__main__":
    main()
