"""The runtime-history page's data: stored runs grouped by commit, and what the page shows.

``load_commits`` reads every pytest-benchmark ``*.json`` under a folder into ``RunRecord``s grouped
by commit (``Commit``, in commit-time order); ``series`` gives each benchmark's median and range
per commit, ``steps`` the jumps between consecutive commits beyond the gate's ``TIME_THRESHOLD``,
``figure_changes`` the changes of the gate's deterministic figures (``STRICT_FIGURES``, with its
tolerances) and ``accuracy`` the gate's ``ACCURACY_KEYS`` of the exact-reference cells.
``compiles`` gives each program's fresh compile time per commit (``thresholds.COMPILES``; a
program a cache served says nothing about compile time) with the host's load while it compiled,
``compile_steps`` its jumps, and ``figure_series`` a figure's value per commit (XLA's static cost).
Runs from before a figure was recorded simply lack it: skipped, never an error.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svi_bench.benchmarks.inference.host_load import CONTENDED_SHARE
from svi_bench.benchmarks.regress.thresholds import (
    ACCURACY_KEYS,
    COMPILES,
    STRICT_FIGURES,
    TIME_GROUPS,
    TIME_THRESHOLD,
    same_figure,
    series_name,
)


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


def _name(bench: dict[str, Any]) -> str:
    """The benchmark's name without its pass (the perf suite runs every case in passes)."""
    return series_name(str(bench.get("name") or bench.get("fullname") or "?"))


def _timer(bench: dict[str, Any]) -> str:
    options = bench.get("options") if isinstance(bench.get("options"), dict) else {}
    return str(options.get("timer") or "?")


def _num(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) and math.isfinite(x) else None


def series(commits: list[Commit]) -> dict[tuple[str, str, str], dict[int, dict[str, float]]]:
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


def _jumps(pts: dict[int, dict[str, Any]], commits: list[Commit]) -> list[dict[str, Any]]:
    """Consecutive points (commit index -> {"median": ...}) whose medians differ by more than
    ``TIME_THRESHOLD`` either way."""
    out = []
    xs = sorted(pts)
    for a, b in zip(xs, xs[1:], strict=False):
        ratio = pts[b]["median"] / pts[a]["median"] if pts[a]["median"] > 0 else math.nan
        if math.isfinite(ratio) and (ratio > 1 + TIME_THRESHOLD
                                     or ratio < 1 / (1 + TIME_THRESHOLD)):
            out.append({"from": commits[a].key[:10], "to": commits[b].key[:10], "ratio": ratio,
                        "kind": "slower" if ratio > 1 else "faster", "points": (a, b)})
    return out


def _by_size(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (-abs(math.log(r["ratio"])), r["benchmark"]))


def steps(by_series: dict, commits: list[Commit]) -> list[dict[str, Any]]:
    """Consecutive commits whose median differs by more than ``TIME_THRESHOLD`` (time groups)."""
    return _by_size([{"benchmark": name, "timer": timer, **jump}
                     for (group, name, timer), pts in by_series.items() if group in TIME_GROUPS
                     for jump in _jumps(pts, commits)])


def under_load(share: float | None) -> bool:
    """Whether a compile ran while other processes used more than ``CONTENDED_SHARE`` of the
    host's CPU (its wall time then says more about them than about the program). Unknown (NaN,
    or a run from before the share was recorded): False."""
    return share is not None and share > CONTENDED_SHARE


def compile_records(commits: list[Commit]) -> list[dict[str, Any]]:
    """Every recorded compile (``thresholds.COMPILES``), once per run and program (a run's passes
    share their programs): commit index, group, benchmark, program label, seconds, cache (None
    when the run did not record it) and host load (None when unknown)."""
    out = []
    for i, c in enumerate(commits):
        for run in c.runs:
            seen = set()
            for b in run.benchmarks:
                info = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
                name = _name(b)
                for label, seconds_key, cache_key, load_key in COMPILES:
                    seconds = _num(info.get(seconds_key))
                    if seconds is None or seconds < 0 or (name, label) in seen:
                        continue
                    seen.add((name, label))
                    cache = info.get(cache_key)
                    out.append({"commit": i, "group": str(b.get("group") or "other"),
                                "benchmark": name, "program": label, "seconds": seconds,
                                "cache": cache if isinstance(cache, str) else None,
                                "share": _num(info.get(load_key))})
    return out


def compiles(commits: list[Commit]) -> dict[tuple[str, str, str], dict[int, dict[str, Any]]]:
    """(group, benchmark, program label) -> commit index -> {median, runs, loaded}: the median
    seconds of the commit's fresh compiles (``cache`` recorded and empty). Compiles under load
    (``under_load``) are left out when the commit has others; a point made of them only is
    ``loaded``."""
    acc: dict[tuple[str, str, str], dict[int, list[tuple[float, bool]]]] = defaultdict(
        lambda: defaultdict(list))
    for r in compile_records(commits):
        if r["cache"] == "":
            acc[(r["group"], r["benchmark"], r["program"])][r["commit"]].append(
                (r["seconds"], under_load(r["share"])))
    out: dict[tuple[str, str, str], dict[int, dict[str, Any]]] = {}
    for key, by_commit in acc.items():
        out[key] = {}
        for i, xs in by_commit.items():
            quiet = [s for s, loaded in xs if not loaded]
            used = quiet or [s for s, _ in xs]
            out[key][i] = {"median": statistics.median(used), "runs": len(used),
                           "loaded": not quiet}
    return out


def compile_steps(by_compile: dict, commits: list[Commit]) -> list[dict[str, Any]]:
    """Consecutive commits whose fresh compile time differs by more than ``TIME_THRESHOLD``;
    ``under_load`` names the ends that only compiled under load (a weaker step)."""
    out = []
    for (_, name, label), pts in by_compile.items():
        for jump in _jumps(pts, commits):
            a, b = jump["points"]
            loaded = [commits[i].key[:10] for i in (a, b) if pts[i]["loaded"]]
            out.append({"benchmark": name, "program": label or "timed", **jump,
                        "under_load": loaded})
    return _by_size(out)


def figure_series(commits: list[Commit], keys: tuple[str, ...]
                  ) -> dict[tuple[str, str, str], dict[int, float]]:
    """(group, benchmark, figure) -> commit index -> its value (the commit's first run that has
    it; deterministic figures agree between runs of a commit), for the figures ``keys``."""
    out: dict[tuple[str, str, str], dict[int, float]] = defaultdict(dict)
    for i, c in enumerate(commits):
        for run in c.runs:
            for b in run.benchmarks:
                info = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
                for key in keys:
                    value = _num(info.get(key))
                    k = (str(b.get("group") or "other"), _name(b), key)
                    if value is not None and i not in out[k]:
                        out[k][i] = value
    return {k: v for k, v in out.items() if v}


def figure_changes(commits: list[Commit]) -> list[dict[str, Any]]:
    """Changes of deterministic figures between consecutive commits that measured them."""
    last: dict[tuple[str, str], tuple[str, Any]] = {}
    out = []
    for c in commits:
        seen: dict[tuple[str, str], Any] = {}
        for run in c.runs:
            for b in run.benchmarks:
                info = b.get("extra_info") if isinstance(b.get("extra_info"), dict) else {}
                for key in STRICT_FIGURES:
                    if key in info and (_name(b), key) not in seen:
                        seen[(_name(b), key)] = info[key]
        for k, value in sorted(seen.items()):
            if k in last:
                prev_commit, prev = last[k]
                if not same_figure(prev, value, STRICT_FIGURES[k[1]]):
                    out.append({"benchmark": k[0], "figure": k[1], "from": prev_commit[:10],
                                "to": c.key[:10], "old": _fmt(prev), "new": _fmt(value)})
            last[k] = (c.key, value)
    return out


def _fmt(x: Any) -> str:
    return f"{x:.8g}" if isinstance(x, float) else str(x)


def accuracy(commits: list[Commit]) -> list[dict[str, Any]]:
    """Per commit and accuracy benchmark (first run wins): ``ACCURACY_KEYS`` with their floors."""
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


def load_commits(history_dir: Path, out_dir: Path, notes: list[str]
                 ) -> tuple[list[RunRecord], list[Commit]]:
    """Every run under ``history_dir`` (never under ``out_dir``: our own output) and their
    commits, both in commit-time order; unreadable or foreign JSON is noted in ``notes``."""
    out_resolved = Path(out_dir).resolve()
    runs = []
    for path in sorted(Path(history_dir).rglob("*.json")):
        if out_resolved in path.resolve().parents:
            continue  # never read our own output back
        run = _load(path, Path(history_dir), notes)
        if run is not None:
            runs.append(run)
    by_key: dict[str, Commit] = {}
    for run in runs:
        key = run.commit + ("+dirty" if run.dirty else "")
        c = by_key.setdefault(key, Commit(key, run.commit_time, run.run_time))
        c.runs.append(run)
        c.first_run = min(c.first_run, run.run_time)
    commits = sorted(by_key.values(), key=lambda c: (_when(c.commit_time), c.first_run, c.key))
    runs.sort(key=lambda r: (_when(r.commit_time), r.run_time, r.path))
    return runs, commits


def _when(text: str) -> str:
    """ISO time normalised to UTC for sorting (unparseable: sorted last, by text)."""
    try:
        t = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return "~" + str(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat()
