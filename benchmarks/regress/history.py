"""Runtime history: stored pytest-benchmark runs (``.benchmarks/``) as one static page.

``build_history(history_dir, out_dir)`` reads every ``*.json`` under ``history_dir`` (recursively:
``--benchmark-autosave`` files, ``--benchmark-json`` files, the gate's per-run files) and writes
``out_dir/history.html`` with one PNG per benchmark group next to it: commits on the x axis in
commit-time order, one line per benchmark (the median round time; several runs of one commit: the
median of their medians) with a band from the fastest to the slowest round, on a log scale. So a
slowdown shows at the commit that introduced it. Tables list the steps between consecutive commits
beyond the gate's threshold, changes of the deterministic figures (gradient evaluations, final
loss), the accuracy metrics of the exact-reference cells, and every run read.

Compile cost too: per group, each program's fresh compile time per commit (a program a cache
served is left out: its time says nothing about compiling), hollow where it compiled only under
load, with a table of its steps beyond the same threshold; and XLA's static cost of the timed
programs (flops, bytes accessed) per commit, exact, so any change is a step.

JSON that is not a pytest-benchmark run (the gate's ``comparison.json``) is listed and ignored; a
corrupt file is skipped with a note on the page, never a crash. Series are kept apart by timer
(wall ``perf_counter`` versus the gate's CPU ``process_time``) since their times do not compare.
No network, relative links only, Jinja2 with autoescape.

The data behind the page (runs grouped by commit, series, steps, figure changes, accuracy rows)
is computed in ``history_data``; the step threshold, the deterministic figures and their
tolerances and the accuracy keys are the gate's (``thresholds``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from svi_bench.benchmarks.inference.host_load import CONTENDED_SHARE
from svi_bench.benchmarks.regress.history_data import (
    Commit,
    accuracy,
    compile_records,
    compile_steps,
    compiles,
    figure_changes,
    figure_series,
    load_commits,
    series,
    steps,
)
from svi_bench.benchmarks.regress.thresholds import ACCURACY_FLOOR_FACTOR, ACCURACY_KEYS, TIME_THRESHOLD

GROUP_ORDER = ("svi", "nuts", "accuracy")
STATIC_PLOTTED = ("xla_flops", "xla_bytes_accessed")
"""XLA's static cost figures of the timed programs the page plots per commit."""


def _short(name: str) -> str:
    """``test_svi_steps[coin-autonormal]`` -> ``coin-autonormal`` for legends."""
    return name[name.index("[") + 1 : -1] if name.endswith("]") and "[" in name else name


def _panels(panels: Sequence[tuple[str, str]], commits: list[Commit], height: float = 4.8):
    """A figure of stacked panels (title, y label), commits on every x axis."""
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(11, height * len(panels)), layout="constrained")
    axes = list(fig.subplots(len(panels), 1, squeeze=False)[:, 0])
    for ax, (title, ylabel) in zip(axes, panels, strict=True):
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.set_xticks(range(len(commits)), [c.label for c in commits], fontsize=7,
                      rotation=90 if len(commits) > 12 else 0)
        ax.set_xlim(-0.5, max(len(commits) - 0.5, 0.5))
        ax.grid(True, which="both", alpha=0.3)
    return fig, axes, matplotlib.colormaps["tab20"]


def _axes(title: str, ylabel: str, commits: list[Commit]):
    fig, axes, cmap = _panels([(title, ylabel)], commits)
    return fig, axes[0], cmap


def _plot_times(group: str, series: dict, commits: list[Commit], path: Path,
                show_timer: bool) -> None:
    fig, ax, cmap = _axes(f"{group}: median round time per commit (band and bar: fastest to "
                          "slowest round)", "time per round (ms, log scale)", commits)
    keys = sorted(k for k in series if k[0] == group)
    for n, key in enumerate(keys):
        pts = series[key]
        xs = sorted(pts)
        color = cmap(n % 20)
        lo = [pts[x]["lo"] * 1e3 for x in xs]
        hi = [pts[x]["hi"] * 1e3 for x in xs]
        label = _short(key[1]) + (f" [{key[2]}]" if show_timer else "")
        ax.plot(xs, [pts[x]["median"] * 1e3 for x in xs], marker="o", ms=3, lw=1.4,
                color=color, label=label)
        ax.fill_between(xs, lo, hi, color=color, alpha=0.12, lw=0)
        ax.vlines(xs, lo, hi, color=color, alpha=0.5, lw=1)
    ax.set_yscale("log")
    if keys:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=100)


def _plot_accuracy(rows: list[dict[str, Any]], commits: list[Commit], path: Path) -> None:
    key = ACCURACY_KEYS[0]
    fig, ax, cmap = _axes(f"accuracy: {key} per commit (dotted: {ACCURACY_FLOOR_FACTOR:g} x its "
                          "noise floor)",
                          f"{key} (reference sd)", commits)
    index = {c.key[:10]: i for i, c in enumerate(commits)}
    names = sorted({r["benchmark"] for r in rows})
    for n, name in enumerate(names):
        pts = sorted((index[r["commit"]], r["metrics"][0][1], r["metrics"][0][2])
                     for r in rows if r["benchmark"] == name and r["metrics"][0][1] is not None)
        if not pts:
            continue
        color = cmap(n % 20)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, lw=1.4, color=color,
                label=_short(name))
        floors = [(p[0], ACCURACY_FLOOR_FACTOR * p[2]) for p in pts if p[2] is not None]
        if floors:
            ax.plot([f[0] for f in floors], [f[1] for f in floors], ls=":", lw=1, color=color)
    ax.set_ylim(bottom=0)
    if names:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=100)


def _plot_compiles(group: str, by_compile: dict, commits: list[Commit], path: Path) -> None:
    fig, ax, cmap = _axes(f"{group}: fresh compile time per commit (median over runs; hollow: "
                          "compiled under load)", "seconds to compile (log scale)", commits)
    names = sorted({k[1] for k in by_compile if k[0] == group})
    for key in sorted(k for k in by_compile if k[0] == group):
        pts = by_compile[key]
        xs = sorted(pts)
        color = cmap(names.index(key[1]) % 20)
        ax.plot(xs, [pts[x]["median"] for x in xs], lw=1.2, color=color,
                ls="--" if key[2] else "-",
                label=_short(key[1]) + (f" ({key[2]})" if key[2] else ""))
        for filled in (True, False):
            sel = [x for x in xs if pts[x]["loaded"] != filled]
            ax.plot(sel, [pts[x]["median"] for x in sel], ls="none", marker="o", ms=5,
                    color=color, markerfacecolor=color if filled else "none")
    ax.set_yscale("log")
    if names:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=100)


def _plot_static(group: str, by_figure: dict, commits: list[Commit], path: Path) -> None:
    fig, axes, cmap = _panels([(f"{group}: {key} of the timed program per commit (exact)",
                                f"{key} (log scale)") for key in STATIC_PLOTTED], commits, 3.6)
    names = sorted({k[1] for k in by_figure if k[0] == group})
    for ax, key in zip(axes, STATIC_PLOTTED, strict=True):
        for n, name in enumerate(names):
            pts = by_figure.get((group, name, key), {})
            xs = sorted(x for x in pts if pts[x] > 0)
            if xs:
                ax.plot(xs, [pts[x] for x in xs], marker="o", ms=3, lw=1.2, color=cmap(n % 20),
                        label=_short(name))
        ax.set_yscale("log")
    if names:
        axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=100)


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Runtime history</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.5em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em;font-size:.85em}
td,th{border:1px solid #ccc;padding:.2em .5em;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.note{color:#8a5a00}.slower{color:#b00020}.faster{color:#1b6e20}
img{max-width:100%;border:1px solid #eee}
code{font-size:.9em}
</style></head><body>
<h1>Runtime history</h1>
<p>{{ runs|length }} stored pytest-benchmark run(s) of {{ commits|length }} commit(s) from
<code>{{ source }}</code>, built {{ built }}. X axis: commits in commit-time order
(<code>+</code>: uncommitted changes); line: median round time, band: fastest to slowest round.
Times of different timers are separate series. Regression gating is done by
<code>python -m svi_bench.benchmarks.regress gate</code> (interleaved base vs head); this page shows when a
change happened.</p>
{% if notes %}<h2>Notes</h2><ul>{% for n in notes %}<li class="note">{{ n }}</li>{% endfor %}</ul>
{% endif %}
{% for g in groups %}<h2>{{ g.name }}</h2>
<p><img src="{{ g.image }}" alt="median round time per commit, group {{ g.name }}"></p>
{% if g.compile_image %}<p><img src="{{ g.compile_image }}"
alt="fresh compile time per commit, group {{ g.name }}"></p>
<p>Compile time: wall seconds to trace, lower and compile each program afresh (solid: the timed
program; dashed: its untimed init or warm-up program). Compiles a cache served (the suite's
executable cache, JAX's) are left out. A point is the median over the commit's runs;
<b>hollow</b>: every fresh compile of that commit ran while other processes used more than
{{ "%.0f"|format(100 * contended) }}% of the host's CPU (compiles under load are left out of
a commit's median when it has quiet ones; an unknown load counts as quiet).</p>{% endif %}
{% if g.static_image %}<p><img src="{{ g.static_image }}"
alt="XLA static cost per commit, group {{ g.name }}"></p>
<p>XLA's static cost of the timed program (each operation counted once): exact, so any change is
a step, listed under <i>Changes of deterministic figures</i>.</p>{% endif %}
{% endfor %}
<h2>Steps between consecutive commits (beyond x{{ "%.2f"|format(1 + threshold) }})</h2>
{% if steps %}<table><tr><th>benchmark</th><th>timer</th><th>from</th><th>to</th><th>ratio</th></tr>
{% for s in steps %}<tr><td><code>{{ s.benchmark }}</code></td><td>{{ s.timer }}</td>
<td><code>{{ s["from"] }}</code></td><td><code>{{ s.to }}</code></td>
<td class="num {{ s.kind }}">x{{ "%.2f"|format(s.ratio) }}</td></tr>{% endfor %}</table>
{% else %}<p>None.</p>{% endif %}
<h2>Compile-time steps between consecutive commits (beyond x{{ "%.2f"|format(1 + threshold) }})</h2>
<p>{{ compile_counts.fresh }} fresh compile(s) of {{ compile_counts.programs }} program(s)
plotted; {{ compile_counts.cached }} served by a cache and {{ compile_counts.unrecorded }} from
runs that did not record their cache left out.</p>
{% if compile_steps %}<table><tr><th>benchmark</th><th>program</th><th>from</th><th>to</th>
<th>ratio</th><th>compiled under load at</th></tr>
{% for s in compile_steps %}<tr><td><code>{{ s.benchmark }}</code></td><td>{{ s.program }}</td>
<td><code>{{ s["from"] }}</code></td><td><code>{{ s.to }}</code></td>
<td class="num {{ s.kind }}">x{{ "%.2f"|format(s.ratio) }}</td>
<td>{% for c in s.under_load %}<code>{{ c }}</code> {% endfor %}</td></tr>{% endfor %}</table>
{% else %}<p>None.</p>{% endif %}
<h2>Changes of deterministic figures</h2>
{% if figure_changes %}<table><tr><th>benchmark</th><th>figure</th><th>from</th><th>to</th>
<th>old</th><th>new</th></tr>
{% for f in figure_changes %}<tr><td><code>{{ f.benchmark }}</code></td><td>{{ f.figure }}</td>
<td><code>{{ f["from"] }}</code></td><td><code>{{ f.to }}</code></td>
<td class="num">{{ f.old }}</td><td class="num">{{ f.new }}</td></tr>{% endfor %}</table>
{% else %}<p>None: gradient evaluations and final losses are unchanged across commits.</p>
{% endif %}
{% if accuracy %}<h2>Accuracy (exact references; value / noise floor)</h2>
<table><tr><th>commit</th><th>benchmark</th><th>verdict</th>
{% for k in accuracy_keys %}<th>{{ k }}</th>{% endfor %}</tr>
{% for a in accuracy %}<tr><td><code>{{ a.commit }}</code></td>
<td><code>{{ a.benchmark }}</code></td><td>{{ a.verdict }}</td>
{% for k, v, f in a.metrics %}<td class="num">
{{ "%.3g"|format(v) if v is not none else "" }}{% if f is not none %} / {{ "%.2g"|format(f) }}
{% endif %}</td>{% endfor %}</tr>{% endfor %}</table>{% endif %}
<h2>Latest values</h2>
<table><tr><th>group</th><th>benchmark</th><th>timer</th><th>commit</th><th>median (ms)</th>
<th>min (ms)</th><th>max (ms)</th><th>runs</th></tr>
{% for l in latest %}<tr><td>{{ l.group }}</td><td><code>{{ l.name }}</code></td>
<td>{{ l.timer }}</td><td><code>{{ l.commit }}</code></td>
<td class="num">{{ "%.3f"|format(l.median) }}</td>
<td class="num">{{ "%.3f"|format(l.lo) }}</td><td class="num">{{ "%.3f"|format(l.hi) }}</td>
<td class="num">{{ l.runs }}</td></tr>{% endfor %}</table>
<h2>Runs</h2>
<table><tr><th>commit</th><th>commit time</th><th>branch</th><th>run time</th><th>role</th>
<th>machine</th><th>benchmarks</th><th>file</th></tr>
{% for r in runs %}<tr><td><code>{{ r.commit[:10] }}{{ "+" if r.dirty }}</code></td>
<td>{{ r.commit_time }}</td><td>{{ r.branch }}</td><td>{{ r.run_time }}</td><td>{{ r.role }}</td>
<td>{{ r.machine }}</td><td class="num">{{ r.benchmarks|length }}</td>
<td><code>{{ r.path }}</code></td></tr>{% endfor %}</table>
</body></html>
"""


def build_history(history_dir: Path, out_dir: Path) -> Path | None:
    """Write ``out_dir/history.html`` (and its PNGs) from the runs under ``history_dir``.

    Returns the page's path, or None if there is no pytest-benchmark run to show.
    """
    history_dir, out_dir = Path(history_dir), Path(out_dir)
    if not history_dir.is_dir():
        return None
    notes: list[str] = []
    runs, commits = load_commits(history_dir, out_dir, notes)
    if not runs:
        return None

    by_series = series(commits)
    timers = {k[2] for k in by_series}
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = sorted({k[0] for k in by_series},
                    key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    acc_rows = accuracy(commits)
    by_compile = compiles(commits)
    by_figure = figure_series(commits, STATIC_PLOTTED)
    group_pages = []
    for g in groups:
        image = f"history_{_safe(g)}.png"
        if g == "accuracy" and acc_rows:  # its time includes compilation: plot what it gates
            _plot_accuracy(acc_rows, commits, out_dir / image)
        else:
            _plot_times(g, by_series, commits, out_dir / image, show_timer=len(timers) > 1)
        page = {"name": g, "image": image, "compile_image": "", "static_image": ""}
        if any(k[0] == g for k in by_compile):
            page["compile_image"] = f"history_{_safe(g)}_compile.png"
            _plot_compiles(g, by_compile, commits, out_dir / page["compile_image"])
        if any(k[0] == g for k in by_figure):
            page["static_image"] = f"history_{_safe(g)}_xla.png"
            _plot_static(g, by_figure, commits, out_dir / page["static_image"])
        group_pages.append(page)
    records = compile_records(commits)
    compile_counts = {"fresh": sum(r["cache"] == "" for r in records),
                      "cached": sum(bool(r["cache"]) for r in records),
                      "unrecorded": sum(r["cache"] is None for r in records),
                      "programs": len(by_compile)}

    latest = []
    for (g, name, timer), pts in sorted(by_series.items()):
        i = max(pts)
        p = pts[i]
        latest.append({"group": g, "name": name, "timer": timer, "commit": commits[i].key[:10],
                       "median": p["median"] * 1e3, "lo": p["lo"] * 1e3, "hi": p["hi"] * 1e3,
                       "runs": p["runs"]})

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_TEMPLATE).render(
        runs=runs, commits=commits, notes=notes, groups=group_pages, latest=latest,
        steps=steps(by_series, commits), figure_changes=figure_changes(commits),
        compile_steps=compile_steps(by_compile, commits), compile_counts=compile_counts,
        contended=CONTENDED_SHARE,
        accuracy=acc_rows, accuracy_keys=ACCURACY_KEYS, threshold=TIME_THRESHOLD,
        source=history_dir.as_posix(),
        built=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    target = out_dir / "history.html"
    target.write_text(page)
    return target


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "group"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m svi_bench.benchmarks.regress.history",
                                     description="Build history.html from pytest-benchmark runs")
    parser.add_argument("history_dir", type=Path, help="folder of stored runs (e.g. .benchmarks)")
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    path = build_history(args.history_dir, args.out_dir)
    if path is None:
        print(f"no pytest-benchmark runs under {args.history_dir}", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
