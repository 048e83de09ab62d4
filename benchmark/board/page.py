"""The static page `leaderboard/index.html`: self-contained (inline CSS, JS and SVG; no network).

Plots are drawn by matplotlib as SVG text with a fixed hash salt and no date, so a rebuild
gives identical bytes. Tables come from `benchmark.board.render` (the same data as the
Markdown); every table sorts on a header click, reference rows (in `<tfoot>`) stay put.
"""

from __future__ import annotations

import functools
import html
import io
import re

from benchmark.board.calibration import Calibration
from benchmark.board.leaderboard import TRACK_LABEL, TRACK_METRIC, VARIANT_ORDER, References, Row, Stat, pareto_eligible
from benchmark.board.render import CALIBRATION_TITLE, HOW_TO_READ, Cell, Table, all_tables
from benchmark.task import BENCHMARK_VERSION

VARIANT_LABEL = {"ar": "autoregressive decoder (ar)", "ni": "no-input decoder (ni)"}

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1300px;color:#222}
div.scroll{overflow-x:auto;margin:0.5em 0 1.5em}table{border-collapse:collapse}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}td{white-space:nowrap}
thead th{background:#f0f0f0;cursor:pointer;user-select:none}th.sorted-asc::after{content:" ▲"}
th.sorted-desc::after{content:" ▼"}tfoot td{font-style:italic;background:#fafafa}figure{margin:1em 0}
p.note{margin:0.2em 0;color:#555}section{margin-top:2em}td a{color:inherit}
div.forms{display:flex;flex-wrap:wrap;gap:0.5em}figure.form{margin:0;flex:1 1 420px;max-width:520px}
figure.form img{width:100%;height:auto}
@media (max-width:1400px){body{margin:1em}.minor{display:none}th,td{padding:3px 6px;font-size:14px}}
@media (max-width:700px){body{margin:0.4em}.phone{display:none}th,td{padding:2px 3px;font-size:12px}td{white-space:normal}
figure.plot svg{width:100%;height:auto}}"""

# Sort on a header click; "" (missing) always sorts last; numbers before text.
_JS = """function sortKey(row,idx){const c=row.cells[idx];const t=c.dataset.sort??c.textContent;if(t==='')return null;
const x=Number(t);return isNaN(x)?t.toLowerCase():x;}
function sortTable(th){const table=th.closest('table');const idx=[...th.parentNode.children].indexOf(th);
const asc=!th.classList.contains('sorted-asc');
table.querySelectorAll('thead th').forEach(h=>h.classList.remove('sorted-asc','sorted-desc'));
th.classList.add(asc?'sorted-asc':'sorted-desc');const body=table.tBodies[0];
const cmp=(a,b)=>{const x=sortKey(a,idx),y=sortKey(b,idx);if(x===null||y===null)return (x===null)-(y===null);
if(typeof x!==typeof y)return typeof x==='number'?-1:1;return (x<y?-1:x>y?1:0)*(asc?1:-1);};
[...body.rows].sort(cmp).forEach(r=>body.appendChild(r));}
document.querySelectorAll('table.sortable thead th').forEach(th=>th.addEventListener('click',()=>sortTable(th)));"""


# Links next to the page: the same data as files, and the docs (paths relative to leaderboard/index.html).
DOWNLOADS = (("leaderboard.csv", "leaderboard.csv"), ("leaderboard.json", "leaderboard.json"),
             ("LEADERBOARD.md", "LEADERBOARD.md"), ("protocol", "../docs/PROTOCOL.md"),
             ("how to submit", "../submissions/README.md"), ("result records", "results/"))


def _inline(text: str) -> str:
    """Escape, then the two Markdown marks the explanations use: `code` and **bold** / *italic*."""
    text = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text, quote=False))
    text = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"\*([^*]+)\*", r"<em>\1</em>", text)


def _hide(table: Table, i: int) -> str:
    """The class that hides column i on smaller screens, if any."""
    return ' class="minor"' if i in table.minor else ' class="phone"' if i in table.phone else ""


def _td(cell: Cell, hide: str = "") -> str:
    key = cell.text if cell.sort is None else cell.sort
    text = html.escape(cell.text)
    if cell.href:
        text = f'<a href="{html.escape(cell.href)}">{text}</a>'
    return f'<td data-sort="{html.escape(str(key))}"{hide}>{text}</td>'


def html_table(table: Table) -> str:
    """A sortable table; body rows carry the leaderboard row id (`data-row`)."""
    head = "".join(f"<th{_hide(table, i)}>{html.escape(h)}</th>" for i, h in enumerate(table.headers))
    body = "".join(f'<tr data-row="{html.escape(rid)}">{"".join(_td(c, _hide(table, i)) for i, c in enumerate(cells))}</tr>'
                   for rid, cells in zip(table.row_ids, table.body))
    foot = "".join(f'<tr>{"".join(_td(c, _hide(table, i)) for i, c in enumerate(cells))}</tr>' for cells in table.foot)
    note = f'<p class="note">{_inline(table.note)}</p>' if table.note else ""
    return (f'<h3>{html.escape(table.title)}</h3>{note}<div class="scroll"><table class="sortable" id="{table.id}">'
            f'<thead><tr>{head}</tr></thead><tbody>{body}</tbody>' + (f"<tfoot>{foot}</tfoot>" if foot else "")
            + "</table></div>")


def _styled(font_size: int):
    """Draw inside matplotlib's rc_context: the style (stable SVG ids, text as text, the font
    size) is the plot's own and never leaks into the process. A global update here once
    changed the layout of benchmarks/plot_curves.py's figures drawn later in the same run."""
    def wrap(draw):
        @functools.wraps(draw)
        def styled(*args, **kwargs):
            import matplotlib

            matplotlib.use("Agg")
            with matplotlib.rc_context({"svg.hashsalt": "onionbench", "svg.fonttype": "none", "font.size": font_size}):
                return draw(*args, **kwargs)
        return styled
    return wrap


def _colours(rows: list[Row]) -> dict[str, str]:
    """A method's colour, the same in every plot of the page."""
    return {name: f"C{i % 10}" for i, name in enumerate(sorted(r.method for r in rows))}


@_styled(9)
def plot_svg(rows: list[Row], track: str, group: str = "") -> str:
    """One figure per track and model group (issue 33 item 7: architectures apart): metric against N,
    a panel per variant, a line per method, std error bars. group "": the GRU core tier; else a label
    of `Row.others` such as "LSTM"."""
    import matplotlib.pyplot as plt  # the Agg backend and the style: `_styled`

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    colour = _colours(rows)
    for ax, variant in zip(axes, VARIANT_ORDER):
        _plot_panel(ax, rows, track, variant, colour, group)
    axes[0].set_ylabel(TRACK_LABEL[track])
    return _svg(fig, axes, right=0.8, legend_size=8)


def _svg(fig, axes, *, right: float, legend_size: int) -> str:
    """One legend for every panel at the right, then the figure as SVG text (no date: rebuilds are byte-equal)."""
    import matplotlib.pyplot as plt

    legend = {label: handle for ax in axes for handle, label in zip(*ax.get_legend_handles_labels())}
    if legend:
        fig.legend(list(legend.values()), list(legend), loc="center right", fontsize=legend_size)
    fig.tight_layout(rect=(0, 0, right, 1))
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg"):]


PARETO_METRICS = ("headline", "write", "interchange")


def _pareto_points(rows: list[Row], metric: str, stratum: tuple[str, str] | None) -> list[tuple[Row, float, float]]:
    """(row, size / model, score) for each headline row with both, overall (None) or in one (variant, N)."""
    out = []
    for r in rows:
        if stratum is None:
            size = r.relative_size_overall
            if metric == "headline":
                score = r.headline.mean if r.headline else None
            else:
                means = [s.mean for by_n in r.cells.get(metric, {}).values() for s in by_n.values() if s is not None]
                score = sum(means) / len(means) if means else None
        else:
            v, n = stratum
            size = r.relative_size.get(v, {}).get(n)
            if metric == "headline":
                cell = r.headline_cells.get(v, {}).get(n)
                score = sum(cell.values()) / len(cell) if cell else None
            else:
                st = r.cells.get(metric, {}).get(v, {}).get(n)
                score = st.mean if st is not None else None
        if size is not None and score is not None:
            out.append((r, size, score))
    return out


def _front(points: list[tuple[Row, float, float]]) -> list[tuple[float, float]]:
    """The hypothesis board's Pareto front among the points, by size: each point no smaller row
    beats. The rows are those `mark_pareto` may mark (open rows are drawn, but the two boards
    are never compared, so they make no front)."""
    pts = sorted((s, h) for r, s, h in points if r.causal_board == "intervention" and pareto_eligible(r))
    front, best = [], -1.0
    for s, h in pts:
        if h > best:
            front.append((s, h))
            best = h
    return front


@_styled(8)
def pareto_svg(rows: list[Row], metric: str) -> str:
    """Score against size relative to the model (log x), overall and per (variant, N), with the Pareto front."""
    import matplotlib.pyplot as plt  # the Agg backend and the style: `_styled`
    from matplotlib.ticker import FormatStrFormatter, MaxNLocator, NullFormatter

    members = [r for r in rows if r.causal_board is not None]
    strata = [None] + [(v, n) for v in VARIANT_ORDER for n in sorted({n for r in members
                                                                     for n in r.relative_size.get(v, {})}, key=int)]
    cols = 3
    fig, axes = plt.subplots((len(strata) + cols - 1) // cols, cols, figsize=(9, 2.6 * ((len(strata) + cols - 1) // cols)),
                             squeeze=False)
    colour = _colours(rows)
    for ax, stratum in zip(axes.flat, strata):
        points = _pareto_points(members, metric, stratum)
        for r, s, h in points:
            ax.scatter([s], [h], color=colour[r.method], marker="o" if r.causal_board == "intervention" else "^",
                       label=r.method, zorder=3)
        front = _front(points)
        if front:
            ax.step([s for s, _ in front], [h for _, h in front], where="post", color="0.5", linestyle=":", zorder=2)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FormatStrFormatter("%.2g"))  # a narrow log range: plain numbers, no minor labels
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.set_title("overall" if stratum is None else f"N={stratum[1]} {stratum[0]}")
    for ax in axes.flat[len(strata):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("size / model weights (log)")
    for ax in axes[:, 0]:
        ax.set_ylabel("headline" if metric == "headline" else TRACK_LABEL[metric])
    return _svg(fig, axes.flat, right=0.82, legend_size=7)


@_styled(8)
def position_svg(rows: list[Row], track: str) -> str:
    """A track's rate against the position, one panel per (variant, N), a line per method (issue 29 item 7):
    the onion predicts a slope (later positions at smaller magnitudes), one subspace per position none."""
    import matplotlib.pyplot as plt  # the Agg backend and the style: `_styled`

    strata = sorted({s for r in rows for s in r.by_position.get(track, {})},
                    key=lambda s: (s.split()[0], int(s.split("=")[1])))
    cols = max(1, len({s.split()[1] for s in strata}))
    nrows = (len(strata) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(2.4 * cols, 2.2 * nrows), squeeze=False, sharey=True)
    colour = _colours(rows)
    for ax, stratum in zip(axes.flat, strata):
        for r in rows:
            rates = r.by_position.get(track, {}).get(stratum)
            if rates:
                ps = sorted(rates, key=int)
                ax.plot([int(p) + 1 for p in ps], [rates[p] for p in ps], marker=".", color=colour[r.method],
                        linestyle=":" if r.hypothesis in ("reference", "none") else "-", label=r.method)
        ax.set_title(stratum)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(range(1, 10))
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(strata):]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("position")
    return _svg(fig, axes.flat, right=0.82, legend_size=7)


def _length_section(rows: list[Row], tables: list[Table]) -> str:
    """The per-length tables, then each by-position table with its plot."""
    parts = []
    for table in tables:
        parts.append(html_table(table))
        if table.id.startswith("by-position-"):
            track = table.id.removeprefix("by-position-")
            parts.append(f'<figure class="plot" data-position="{track}">{position_svg(rows, track)}</figure>')
    return "".join(parts)


def _board_section(rows: list[Row], tables: list[Table]) -> str:
    """The boards; after the size table, the Pareto plots (circles: hypothesis board, triangles: open board)."""
    parts = []
    for table in tables:
        parts.append(html_table(table))
        if table.id == "pareto":
            parts += [f'<figure class="plot" data-pareto="{m}">{pareto_svg(rows, m)}</figure>' for m in PARETO_METRICS]
    return "".join(parts)


_FAMILY = re.compile(r".*-h(\d+)-([a-z]+)")  # zoo-scheme family names: {architecture}-h{N}-{variant}
UNPLOTTED = ("custom models", "calibration tier")  # groups with no meaningful N axis


def _curves(row: Row, track: str, variant: str) -> list[tuple[str, list[tuple[int, Stat]]]]:
    """(group label, points against N): the GRU core tier (label "") first, then other architectures and tiers."""
    curves = [("", sorted((int(n), s) for n, s in row.cells[track].get(variant, {}).items() if s is not None))]
    for label, tracks in sorted(row.others.items()):
        if not label.endswith(UNPLOTTED):
            curves.append((label, sorted((int(m[1]), s) for fam, s in tracks[track].items()
                                         if s is not None and (m := _FAMILY.fullmatch(fam)) and m[2] == variant)))
    return [(label, points) for label, points in curves if points]


def _plot_panel(ax, rows: list[Row], track: str, variant: str, colour: dict[str, str], only: str = "") -> None:
    """A line per method in one model group (dotted: a reference or hypothesis-free row)."""
    sizes: set[int] = set()
    for r in rows:
        if track not in r.tracks_attempted:
            continue
        for group, points in _curves(r, track, variant):
            if group != only:
                continue
            reference = r.hypothesis in ("reference", "none")  # a ceiling or a hypothesis-free line: dotted
            ax.errorbar([n for n, _ in points], [s.mean for _, s in points], yerr=[s.std or 0.0 for _, s in points],
                        marker="o", linestyle=":" if reference else "-", capsize=3, label=r.method,
                        color=colour[r.method])
            sizes |= {n for n, _ in points}
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(sizes), [str(n) for n in sorted(sizes)])
    ax.minorticks_off()
    ax.set_title(VARIANT_LABEL[variant])
    ax.set_xlabel("hidden size N")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)


def _track_sections(rows: list[Row], tables: list[Table]) -> str:
    """Each track's table followed by its plot; then the method-size table."""
    groups = sorted({g for r in rows for g in r.others if not g.endswith(UNPLOTTED)})
    parts = []
    for table in tables:
        track = table.id.removeprefix("track-")
        plots = ""
        if track in TRACK_METRIC:
            plots = f'<figure class="plot" data-track="{track}"><figcaption>GRU core tier</figcaption>' \
                    f'{plot_svg(rows, track)}</figure>'
            plots += "".join(f'<figure class="plot" data-group="{html.escape(g)}"><figcaption>{html.escape(g)}'
                             f"</figcaption>{plot_svg(rows, track, g)}</figure>" for g in groups)
        parts.append(html_table(table) + plots)
    return "".join(parts)


FORM_ARCHITECTURES = ("LSTM",)  # groups besides the GRU core tier whose onion form is measured (issue 30 item 4)


def form_families(rows: list[Row]) -> list[str]:
    """The model families whose onion-form figure the page shows: the GRU core tier's and the
    LSTM's, read off the rows (the page stays a function of the records)."""
    fams = {f"gru-h{n}-{variant}" for r in rows for by_variant in r.cells.values()
            for variant, by_n in by_variant.items() for n in by_n}
    fams |= {fam for r in rows for label, tracks in r.others.items() if label in FORM_ARCHITECTURES
             for by_fam in tracks.values() for fam in by_fam}
    return sorted(fams, key=lambda f: (f.split("-")[0], int(f.split("-h")[1].split("-")[0]), f))


def _form_section(rows: list[Row]) -> str:
    """Figures drawn by `benchmark.studies.onion_form` next to the page (leaderboard/onion-form/)."""
    intro = ("What magnitude profile an onion write learns, per model family, on the `valid` split: each "
             "position's layer size under the strict magnitude form s(p) = gamma^p * s0, the paper's form and a "
             "free one, with each form's WRITE relative to the additive table (the ceiling of any additive "
             "edit). Data and REPORT.md: `leaderboard/onion-form/` (`python -m benchmark.studies.onion_form`).")
    figs = "".join(f'<figure class="form"><img src="onion-form/{fam}.svg" alt="onion form of {fam}" loading="lazy">'
                   f"</figure>" for fam in form_families(rows))
    return f'<p>{_inline(intro)}</p><div class="forms">{figs}</div>'


def _section(sid: str, title: str, body: str) -> str:
    return f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body}</section>'


def render_page(rows: list[Row], refs: References, cal: Calibration | None = None) -> str:
    """index.html: how to read it, the two boards, per-track tables and plots, the per-length view,
    calibration, other tiers."""
    tables = all_tables(rows, refs, cal)
    how = "".join(f"<li>{_inline(line)}</li>" for line in HOW_TO_READ)
    sections = [_section("how-to-read", "How to read this", f"<ul>{how}</ul>"),
                _section("boards", "Boards", _board_section(rows, tables["boards"])),
                _section("tracks", "Per track (GRU core tier)", _track_sections(rows, tables["tracks"])),
                _section("by-length", "Per sequence length and position (GRU core tier)",
                         _length_section(rows, tables["lengths"]))]
    if tables["calibration"]:
        sections.append(_section("calibration", CALIBRATION_TITLE, "".join(html_table(t) for t in tables["calibration"])))
    if form_families(rows):
        sections.append(_section("onion-form", "The onion's form, per model family", _form_section(rows)))
    if tables["others"]:
        sections.append(_section("other-models", "Other tiers and architectures",
                                 "".join(html_table(t) for t in tables["others"])))
    downloads = " · ".join(f'<a href="{href}">{html.escape(label)}</a>' for label, href in DOWNLOADS)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>onionbench leaderboard v{BENCHMARK_VERSION}</title>
<style>{_CSS}</style></head><body>
<h1>onionbench leaderboard <small>(benchmark v{BENCHMARK_VERSION})</small></h1>
<p>Methods that read and write the token stored at each position of a recurrent network's state, scored on the
reference models. Generated from the committed result records (benchmark v{BENCHMARK_VERSION}).</p>
<p class="downloads">{downloads}</p>
{"".join(sections)}
<script>{_JS}</script>
</body></html>
"""
