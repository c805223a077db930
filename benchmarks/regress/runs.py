"""Loading pytest-benchmark JSON runs of the perf suite, with every case's passes merged into one.

Within a run every timed case runs in several passes spread over the run (``programs.PASSES``),
each a benchmark of its own named ``...[case-pass<k>]``; ``Run`` merges them into one benchmark
per case (min of mins, median of medians) and records the outcome of every collected test from
the suite's ``svi_bench`` section.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from svi_bench.benchmarks.regress.thresholds import series_name


class RunError(ValueError):
    """A run's JSON is missing, unreadable or not pytest-benchmark output."""


_OUTCOME_RANK = {"error": 3, "failed": 2, "skipped": 1, "passed": 0}


def merge_passes(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One benchmark from its passes: min of mins, median of medians, max of maxes."""
    first = dict(entries[0])
    if len(entries) == 1:
        return first
    stats = [e.get("stats") or {} for e in entries]

    def values(key: str) -> list[float]:
        return [float(x[key]) for x in stats
                if isinstance(x.get(key), int | float) and math.isfinite(x[key])]

    merged = dict(first.get("stats") or {})
    for key, fn in (("min", min), ("max", max), ("median", statistics.median),
                    ("mean", statistics.fmean)):
        if values(key):
            merged[key] = fn(values(key))
    merged["rounds"] = int(sum(values("rounds")))
    merged["pass_min"] = values("min")
    first["stats"] = merged
    first["name"], first["fullname"] = (series_name(str(first.get(k, ""))) for k in
                                        ("name", "fullname"))
    return first


@dataclass
class Run:
    """One pytest-benchmark JSON run: benchmarks by full name (passes merged into one), and the
    outcome of every collected test when the suite recorded them."""

    label: str
    benchmarks: dict[str, dict[str, Any]]
    outcomes: dict[str, dict[str, str]] = field(default_factory=dict)
    commit: str = ""
    source_root: str = ""
    partial: bool = False  # a confirmation run of selected benchmarks only

    @classmethod
    def from_json(cls, data: Mapping[str, Any], label: str = "") -> Run:
        if not isinstance(data, Mapping) or not isinstance(data.get("benchmarks"), list):
            raise RunError(f"{label or 'run'}: not pytest-benchmark JSON (no 'benchmarks' list)")
        passes: dict[str, list[Mapping[str, Any]]] = {}
        for b in data["benchmarks"]:
            if not isinstance(b, Mapping) or not isinstance(b.get("stats"), Mapping):
                raise RunError(f"{label or 'run'}: a benchmark entry has no stats")
            name = series_name(str(b.get("fullname") or b.get("name")))
            passes.setdefault(name, []).append(b)
        benches = {name: merge_passes(entries) for name, entries in passes.items()}
        extra = data.get("svi_bench") or {}
        outcomes: dict[str, dict[str, str]] = {}
        for nodeid, outcome in (extra.get("outcomes") or {}).items():
            name = series_name(nodeid)
            seen = outcomes.get(name)
            rank = _OUTCOME_RANK.get(str(outcome.get("outcome")), 0)
            if seen is None or rank > _OUTCOME_RANK.get(seen["outcome"], 0):
                reason = str(outcome.get("reason", ""))
                if name != nodeid and rank >= 2:
                    reason = f"{nodeid.rsplit('-', 1)[-1].rstrip(']')}: {reason}"
                outcomes[name] = {"outcome": str(outcome.get("outcome")), "reason": reason}
        commit = (data.get("commit_info") or {}).get("id") or ""
        return cls(label, benches, outcomes, str(commit), str(extra.get("source_root") or ""),
                   bool(extra.get("partial")))

    @classmethod
    def load(cls, path: Path | str) -> Run:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise RunError(f"{path}: no such file (the run wrote no JSON)") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RunError(f"{path}: unreadable ({type(exc).__name__}: {exc})") from None
        return cls.from_json(data, str(path))

    def status(self, name: str) -> tuple[str, str]:
        """("ok" | "failed" | "error" | "skipped" | "missing", reason) of one benchmark."""
        outcome = self.outcomes.get(name)
        if outcome and outcome.get("outcome") in ("failed", "error", "skipped"):
            return outcome["outcome"], outcome.get("reason", "")
        if name in self.benchmarks:
            return "ok", ""
        if outcome:  # passed but pytest-benchmark dropped it: the benchmarked call raised
            return "error", "benchmark recorded no timings"
        if self.partial:
            return "not_run", "not selected in this confirmation run"
        return "missing", "not collected (renamed, removed or deselected?)"


def latest_autosave(storage: Path, exclude: Path | None = None) -> Path | None:
    """The newest pytest-benchmark autosave under ``storage`` (``NNNN_*.json``), if any."""
    files = sorted((p for p in storage.glob("*/[0-9][0-9][0-9][0-9]_*.json")
                    if exclude is None or p.resolve() != exclude.resolve()),
                   key=lambda p: (p.stat().st_mtime, p.name))
    return files[-1] if files else None
