"""Runtime history: stored pytest-benchmark runs (``.benchmarks/``) as one static page.

``build_history(history_dir, out_dir)`` reads every ``*.json`` under ``history_dir`` (recursively:
``--benchmark-autosave`` files, ``--benchmark-json`` files, the gate's per-run files) and writes
``out_dir/history.html`` with one PNG per benchmark group next to it: commits on the x axis in
commit-time order, one line per benchmark (the median round time; several runs of one commit: the
median of their medians) with a band from the fastest to the slowest round, on a log scale. So a
slowdown shows at the commit that introduced it. Tables list the steps between consecutive commits
beyond the gate's threshold, changes of the deterministic figures (gradient evaluations, final
loss), the accuracy metrics of the exact-reference cells, and every run read.

JSON that is not a pytest-benchmark run (the gate's ``comparison.json``) is listed and ignored; a
corrupt file is skipped with a note on the page, never a crash. Series are kept apart by timer
(wall ``perf_counter`` versus the gate's CPU ``process_time``) since their times do not compare.
No network, relative links only, Jinja2 with autoescape.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

STEP_THRESHOLD = 0.50  # as benchmarks.regress.TIME_THRESHOLD: a step beyond this is listed
FIGURE_KEYS = ("grad_evals", "grad_evals_warmup", "divergences", "final_loss")
FINAL_LOSS_RTOL = 5e-6
ACCURACY_KEYS = ("w1_max", "std_mean_err_max", "sd_log_ratio_max")
GROUP_ORDER = ("svi", "nuts", "accuracy")


@dataclass
class RunRecord:
    path: str
    commit: str
    dirty: bool
    commit_time: str
    branch: str
    run_time: str
    machine: str
    role: str
    benchmarks: list[dict[str, Any]]


@dataclass
class Commit:
    key: str  # commit id, "+dirty" when the tree had changes
    commit_time: str
    first_run: str
    runs: list[RunRecord] = field(default_factory=list)

    @property
    def label(self) -> str:
        short = self.key[:7] + ("+" if self.key.endswith("+dirty") else "")
        day = self.commit_time[:10]
        return f"{short}\n{day}" if day else short


def _load(path: Path, root: Path, notes: list[str]) -> RunRecord | None:
    rel = path.relative_to(root).as_posix()
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        notes.append(f"{rel}: skipped, corrupt or unreadable ({type(exc).__name__})")
        return None
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), list):
        notes.append(f"{rel}: skipped, not a pytest-benchmark run")
        return None
    benches = [b for b in data["benchmarks"]
               if isinstance(b, dict) and isinstance(b.get("stats"), dict)]
    if len(benches) != len(data["benchmarks"]):
        notes.append(f"{rel}: {len(data['benchmarks']) - len(benches)} malformed benchmark "
                     "entries ignored")
    ci = data.get("commit_info") if isinstance(data.get("commit_info"), dict) else {}
    mi = data.get("machine_info") if isinstance(data.get("machine_info"), dict) else {}
    extra = data.get("svi_bench") if isinstance(data.get("svi_bench"), dict) else {}
    cpu = mi.get("cpu") if isinstance(mi.get("cpu"), dict) else {}
    machine = " / ".join(str(x) for x in (mi.get("node"), cpu.get("brand_raw")) if x)
    return RunRecord(
        path=rel,
        commit=str(ci.get("id") or "unknown"),
        dirty=bool(ci.get("dirty")),
        commit_time=str(ci.get("time") or ci.get("author_time") or ""),
        branch=str(ci.get("branch") or ""),
        run_time=str(data.get("datetime") or ""),
        machine=machine,
        role=str(extra.get("role") or ""),
        benchmarks=benches,
    )


_PASS_RE = re.compile(r"-pass\d+(?=\]$)")


def _name(bench: dict[str, Any]) -> str:
    """The benchmark's name without its pass (the perf suite runs every case in passes)."""
    return _PASS_RE.sub("", str(bench.get("name") or bench.get("fullname") or "?"))


def _timer(bench: dict[str, Any]) -> str:
    options = bench.get("options") if isinstance(bench.get("options"), dict) else {}
    return str(options.get("timer") or "?")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def _series(commits: list[Commit]) -> dict[tuple[str, str, str], dict[int, dict[str, float]]]:
    """(group, benchmark, timer) -> commit index -> {median, lo, hi} in seconds."""
    acc: dict[tuple[str, str, str], dict[int, list[dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(list))
    for i, c in enumerate(commits):
        for run in c.runs:
            for b in run.benchmarks:
                name = _name(b)
                acc[(str(b.get("group") or "other"), name, _timer(b))][i].append(b["stats"])
    out: dict[tuple[str, str, str], dict[int, dict[str, float]]] = {}
    for key, by_commit in acc.items():
        points = {}
        for i, stats in by_commit.items():
            med = [m for s in stats if (m := _num(s.get("median"))) is not None]
            lo = [m for s in stats if (m := _num(s.get("min"))) is not None]
            hi = [m for s in stats if (m := _num(s.get("max"))) is not None]
            if med:
                points[i] = {"median": statistics.median(med), "lo": min(lo or med),
                             "hi": max(hi or med), "runs": len(med)}
        if points:
            out[key] = points
    return out


def _short(name: str) -> str:
    """``test_svi_steps[coin-autonormal]`` -> ``coin-autonormal`` for legends."""
    return name[name.index("[") + 1 : -1] if name.endswith("]") and "[" in name else name


def _axes(title: str, ylabel: str, commits: list[Commit]):
    import matplotlib
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    fig = Figure(figsize=(11, 4.8), layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.set_xticks(range(len(commits)), [c.label for c in commits], fontsize=7,
                  rotation=90 if len(commits) > 12 else 0)
    ax.set_xlim(-0.5, max(len(commits) - 0.5, 0.5))
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax, matplotlib.colormaps["tab20"]


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
    fig, ax, cmap = _axes(f"accuracy: {key} per commit (dotted: 3 x its noise floor)",
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
        floors = [(p[0], 3 * p[2]) for p in pts if p[2] is not None]
        if floors:
            ax.plot([f[0] for f in floors], [f[1] for f in floors], ls=":", lw=1, color=color)
    ax.set_ylim(bottom=0)
    if names:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.savefig(path, dpi=100)


def _steps(series: dict, commits: list[Commit]) -> list[dict[str, Any]]:
    """Consecutive commits whose median differs by more than ``STEP_THRESHOLD``."""
    out = []
    for (group, name, timer), pts in series.items():
        if group not in ("svi", "nuts"):
            continue
        xs = sorted(pts)
        for a, b in zip(xs, xs[1:], strict=False):
            ratio = pts[b]["median"] / pts[a]["median"] if pts[a]["median"] > 0 else math.nan
            if math.isfinite(ratio) and (ratio > 1 + STEP_THRESHOLD
                                         or ratio < 1 / (1 + STEP_THRESHOLD)):
                out.append({"benchmark": name, "timer": timer, "from": commits[a].key[:10],
                            "to": commits[b].key[:10], "ratio": ratio,
                            "kind": "slower" if ratio > 1 else "faster"})
    return sorted(out, key=lambda r: (-abs(math.log(r["ratio"])), r["benchmark"]))


def _figure_changes(commits: list[Commit]) -> list[dict[str, Any]]:
    """Changes of deterministic figures between consecutive commits that measured them."""
    last: dict[tuple[str, str], tuple[str, Any]] = {}
    out = []
    for c in commits:
        seen: dict[tuple[str, str], Any] = {}
        for run in c.runs:
            for b in run.benchmarks:
                info = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
                for key in FIGURE_KEYS:
                    if key in info and (_name(b), key) not in seen:
                        seen[(_name(b), key)] = info[key]
        for k, value in sorted(seen.items()):
            if k in last:
                prev_commit, prev = last[k]
                if not _same(prev, value, FINAL_LOSS_RTOL if k[1] == "final_loss" else 0.0):
                    out.append({"benchmark": k[0], "figure": k[1], "from": prev_commit[:10],
                                "to": c.key[:10], "old": _fmt(prev), "new": _fmt(value)})
            last[k] = (c.key, value)
    return out


def _fmt(x: Any) -> str:
    return f"{x:.8g}" if isinstance(x, float) else str(x)


def _same(a: Any, b: Any, rtol: float) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(a - b) <= rtol * max(abs(a), abs(b), 1.0)
    return a == b


def _accuracy(commits: list[Commit]) -> list[dict[str, Any]]:
    rows = []
    for c in commits:
        done = set()
        for run in c.runs:
            for b in run.benchmarks:
                info = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
                acc, floor = info.get("accuracy"), info.get("accuracy_floor") or {}
                name = _name(b)
                if not isinstance(acc, dict) or name in done:
                    continue
                done.add(name)
                rows.append({"commit": c.key[:10], "benchmark": name,
                             "verdict": info.get("verdict", ""),
                             "metrics": [(k, _num(acc.get(k)), _num(floor.get(k)))
                                         for k in ACCURACY_KEYS]})
    return rows


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
<code>python -m benchmarks.regress gate</code> (interleaved base vs head); this page shows when a
change happened.</p>
{% if notes %}<h2>Notes</h2><ul>{% for n in notes %}<li class="note">{{ n }}</li>{% endfor %}</ul>
{% endif %}
{% for g in groups %}<h2>{{ g.name }}</h2>
<p><img src="{{ g.image }}" alt="median round time per commit, group {{ g.name }}"></p>
{% endfor %}
<h2>Steps between consecutive commits (beyond x{{ "%.2f"|format(1 + threshold) }})</h2>
{% if steps %}<table><tr><th>benchmark</th><th>timer</th><th>from</th><th>to</th><th>ratio</th></tr>
{% for s in steps %}<tr><td><code>{{ s.benchmark }}</code></td><td>{{ s.timer }}</td>
<td><code>{{ s["from"] }}</code></td><td><code>{{ s.to }}</code></td>
<td class="num {{ s.kind }}">x{{ "%.2f"|format(s.ratio) }}</td></tr>{% endfor %}</table>
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
    out_resolved = out_dir.resolve()
    runs = []
    for path in sorted(history_dir.rglob("*.json")):
        if out_resolved in path.resolve().parents:
            continue  # never read our own output back
        run = _load(path, history_dir, notes)
        if run is not None:
            runs.append(run)
    if not runs:
        return None

    by_key: dict[str, Commit] = {}
    for run in runs:
        key = run.commit + ("+dirty" if run.dirty else "")
        c = by_key.setdefault(key, Commit(key, run.commit_time, run.run_time))
        c.runs.append(run)
        c.first_run = min(c.first_run, run.run_time)
    commits = sorted(by_key.values(), key=lambda c: (_when(c.commit_time), c.first_run, c.key))
    runs.sort(key=lambda r: (_when(r.commit_time), r.run_time, r.path))

    series = _series(commits)
    timers = {k[2] for k in series}
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = sorted({k[0] for k in series},
                    key=lambda g: (GROUP_ORDER.index(g) if g in GROUP_ORDER else 99, g))
    accuracy = _accuracy(commits)
    group_pages = []
    for g in groups:
        image = f"history_{_safe(g)}.png"
        if g == "accuracy" and accuracy:  # its time includes compilation: plot what it gates
            _plot_accuracy(accuracy, commits, out_dir / image)
        else:
            _plot_times(g, series, commits, out_dir / image, show_timer=len(timers) > 1)
        group_pages.append({"name": g, "image": image})

    latest = []
    for (g, name, timer), pts in sorted(series.items()):
        i = max(pts)
        p = pts[i]
        latest.append({"group": g, "name": name, "timer": timer, "commit": commits[i].key[:10],
                       "median": p["median"] * 1e3, "lo": p["lo"] * 1e3, "hi": p["hi"] * 1e3,
                       "runs": p["runs"]})

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = env.from_string(_TEMPLATE).render(
        runs=runs, commits=commits, notes=notes, groups=group_pages, latest=latest,
        steps=_steps(series, commits), figure_changes=_figure_changes(commits),
        accuracy=accuracy, accuracy_keys=ACCURACY_KEYS, threshold=STEP_THRESHOLD,
        source=history_dir.as_posix(),
        built=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    target = out_dir / "history.html"
    target.write_text(page)
    return target


def _when(text: str) -> str:
    """ISO time normalised to UTC for sorting (unparseable: sorted last, by text)."""
    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return "~" + str(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat()


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name) or "group"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.regress.history",
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
