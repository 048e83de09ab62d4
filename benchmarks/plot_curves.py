"""Plot the committed learning curves: each baseline's `valid` scores against its fit steps.

Why a plot next to the data: issue #13 asks that a reader can see, not just be told, that
a default schedule sits on its curve's plateau. Reads every
`leaderboard/curves/<method>/<model>[-<override>].json` written by
`benchmarks/learning_curves.py` (and `-long.json` files of `benchmarks/long_schedule.py`) and draws one SVG per method,
`leaderboard/curves/<method>.svg`: one panel per metric the method attempts, one line per
curve file (model plus any fixed override such as `lr0.01`), log-scaled steps. The SVG is
deterministic (fixed hash salt, no date), so an unchanged curve gives an unchanged file.

    python benchmarks/plot_curves.py            # every method with curves
    python benchmarks/plot_curves.py linear-das
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import NamedTuple

CURVES = Path(__file__).resolve().parents[1] / "leaderboard" / "curves"
PANELS = (("read", "sequence_accuracy", "READ seq. acc."), ("write", "iia", "WRITE IIA"),
          ("interchange", "iia", "INTERCHANGE IIA"), ("interchange", "L9", "INTERCHANGE IIA, length 9"))


def value(point: dict, track: str, metric: str) -> float | None:
    """A point's metric; "L9" is the length-9 by_length entry (the paper's linear test)."""
    if metric == "L9":
        return point.get("by_length", {}).get(track, {}).get("9")
    return (point["metrics"].get(track) or {}).get(metric)


def x_label(method_dir: Path) -> str:
    """What the x axis counts: fit steps, or the parameter a curve varied (e.g. n_samples)."""
    for path in sorted(method_dir.glob("*.json")):
        varied = json.loads(path.read_text()).get("vary", ["steps"])[0]
        return "fit steps" if varied == "steps" else varied
    return "fit steps"


class Curve(NamedTuple):
    """One curve file as a plotted line: its model (the colour), its line style, its points."""

    model: str
    style: str  # "-" the method's own settings, "--" a fixed override (an experiment), ":" one long fit
    points: list[dict]


def load_curves(method_dir: Path) -> dict[str, Curve]:
    """Curve label -> its line. The label is the model plus its lr, when the method has one
    (a curve run before a default changed still says what it measured), plus the fixed
    override its file name carries (`-n_samples200000`, `-lengths9`): without it, two curves
    of one model at one lr had one label, and the later file hid the other."""
    curves = {}
    for path in sorted(method_dir.glob("*.json")):
        curve = json.loads(path.read_text())
        lr = curve["params"].get("lr")
        label = curve["model"] + (f", lr {lr:g}" if lr is not None else "")
        override = path.stem[len(curve["model"]):].removesuffix("-long").lstrip("-")
        if override:  # even an lr override: the default's own curve may be at the same lr
            label += f", {override}"
        long_fit = "schedule" in curve  # benchmarks/long_schedule.py: one long fit scored along the way
        if long_fit:
            label += ", one long fit"
        style = ":" if long_fit else "--" if override else "-"
        curves[label] = Curve(curve["model"], style, sorted(curve["points"], key=lambda p: p["steps"]))
    return curves


def plot_method(method_dir: Path) -> Path:
    """Draw one method's curves; returns the SVG's path."""
    out = method_dir.with_suffix(".svg")
    out.write_text(render_method(method_dir))
    return out


def render_method(method_dir: Path) -> str:
    """One method's curves as SVG text (deterministic: the freshness test compares it with the file).

    Drawn with matplotlib's defaults whatever the process set before (a test run draws the
    leaderboard page first), and the style is restored after."""
    import matplotlib

    matplotlib.use("Agg")
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams["svg.hashsalt"] = "onionbench"  # stable element ids: the file changes only with the data
        return _render(method_dir)


def _render(method_dir: Path) -> str:
    import io

    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    curves = load_curves(method_dir)
    panels = [p for p in PANELS if any(value(pt, p[0], p[1]) is not None for c in curves.values() for pt in c.points)]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    models = sorted({c.model for c in curves.values()})
    for ax, (track, metric, title) in zip(axes[0], panels, strict=True):
        for label, c in curves.items():
            xy = [(p["steps"], v) for p in c.points if (v := value(p, track, metric)) is not None]
            if xy:
                color = f"C{models.index(c.model) % 10}"  # one colour per model
                ax.plot(*zip(*xy, strict=True), marker="o", label=label, color=color, linestyle=c.style)
        ax.set(xscale="log", xlabel=x_label(method_dir), title=title, ylim=(0, 1.02))
        xs = sorted({p["steps"] for c in curves.values() for p in c.points})
        ax.set_xticks(xs if len(xs) <= 8 else xs[:: len(xs) // 8 + 1])  # the measured schedules, labelled
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(NullFormatter())  # log-axis minor labels collide
        ax.grid(alpha=0.3)
    # Beside the panels, not on them: with a dozen curves an inside legend hid the lines.
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.suptitle(f"{method_dir.name}: learning curves on the valid split")
    fig.tight_layout()
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("methods", nargs="*", help="methods to plot (default: every method with curves)")
    args = parser.parse_args(argv)
    dirs = [CURVES / m for m in args.methods] or sorted(d for d in CURVES.iterdir() if d.is_dir())
    for d in dirs:
        if not d.is_dir():
            raise SystemExit(f"no curves for {d.name}: run benchmarks/learning_curves.py {d.name} MODEL --steps ...")
        print(f"wrote {plot_method(d)}")


if __name__ == "__main__":
    main()
