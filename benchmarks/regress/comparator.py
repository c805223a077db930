"""The comparator: paired base and head runs in, findings and a table of rows out.

Per benchmark (``compare``):

* time (groups ``svi`` and ``nuts``): CPU time (``TIMER``) of the fastest round. Noise on a loaded
  machine only adds time, in phases of a fraction of a second to a minute, so the statistic is a
  minimum: per run over its passes, and per side over its runs. A benchmark is slower when both
  the median over alternations of head/base and the ratio of the two sides' overall minima exceed
  ``1 + TIME_THRESHOLD``; the gate then measures a suspect again, alone, in ``DEFAULT_CONFIRM``
  more alternations and judges it on all of them (a noise phase passes, a real slowdown stays).
* deterministic figures, strictly: ``grad_evals``, ``grad_evals_warmup``, ``divergences`` exactly
  (NUTS leapfrog steps for a fixed seed; SVI steps x particles), ``final_loss`` and
  ``draws_mean`` (a method program's draws) within ``FINAL_LOSS_RTOL`` relative. A figure that
  differs between runs of the *same* side is reported as non-deterministic and not gated.
* accuracy (group ``accuracy``, exact-reference models): fail if a metric's distance from its
  ideal value (``metrics.deviation``) grows by more than ``ACCURACY_FLOOR_FACTOR`` x its noise
  floor (``metrics.noise_floor``, stored by the benchmark). The metrics are deterministic for the
  fixed seed, so unchanged code gives a change of exactly 0; a refactor that only reshuffles random
  numbers moves them by about one floor.
* a benchmark that errored or failed in any head run, or that base measured and head did not
  (skipped, deselected, removed), fails, naming the benchmark and the reason. One that only base
  could not measure is a warning (new benchmark, or the suite needs an API base lacks).

The thresholds are in ``thresholds``; the Markdown summary in ``summary``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from svi_bench.benchmarks.regress.runs import Run
from svi_bench.benchmarks.regress.summary import render_markdown
from svi_bench.benchmarks.regress.thresholds import (
    ACCURACY_FLOOR_FACTOR,
    ACCURACY_KEYS,
    FAIL,
    INFO,
    STRICT_FIGURES,
    TIME_GROUPS,
    TIME_STAT,
    TIME_THRESHOLD,
    WARN,
    same_figure,
)


@dataclass
class Finding:
    benchmark: str
    kind: str  # time | figure | accuracy | status
    severity: str  # fail | warn | info
    message: str


@dataclass
class Row:
    benchmark: str
    group: str
    base_s: float | None = None  # min over base runs of TIME_STAT
    head_s: float | None = None
    ratio: float | None = None  # median over alternations of head/base
    pooled_ratio: float | None = None  # head_s / base_s: minimum over all runs of each side
    ratios: list[float] = field(default_factory=list)
    median_ratio: float | None = None  # the same with the median round time, for the report
    gated: bool = False
    status: str = "ok"
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Comparison:
    rows: list[Row]
    findings: list[Finding]
    settings: dict[str, Any]

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == FAIL]

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "settings": self.settings,
                "findings": [asdict(f) for f in self.findings],
                "rows": [asdict(r) for r in self.rows]}

    def to_markdown(self, title: str = "Benchmark gate") -> str:
        return render_markdown(self, title)


def _stat(bench: Mapping[str, Any], key: str) -> float | None:
    value = (bench.get("stats") or {}).get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def _group(name: str, runs: Iterable[Run]) -> str:
    for run in runs:
        b = run.benchmarks.get(name)
        if b is not None:
            return str(b.get("group") or (b.get("extra_info") or {}).get("kind") or "")
    return ""


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _deviation(key: str, value: float) -> float:
    from svi_bench.benchmarks.scoring.metrics import deviation  # NumPy/SciPy only; keeps this module light

    return deviation(key, value)


def _side_value(runs: Sequence[Run], name: str, key: str, rtol: float
                ) -> tuple[Any, bool, bool]:
    """(value of the first run that has it, present anywhere, consistent across runs)."""
    values = [r.benchmarks[name].get("extra_info", {}).get(key)
              for r in runs if name in r.benchmarks]
    values = [v for v in values if v is not None] or values
    if not values or all(v is None for v in values):
        return None, False, True
    first = values[0]
    return first, True, all(same_figure(first, v, rtol) for v in values[1:])


def compare(
    base_runs: Sequence[Run],
    head_runs: Sequence[Run],
    threshold: float = TIME_THRESHOLD,
    accuracy_factor: float = ACCURACY_FLOOR_FACTOR,
    gate_time: bool = True,
    allow_figure_changes: bool = False,
    allow_slowdown: bool = False,
) -> Comparison:
    """Compare paired runs (``base_runs[i]`` with ``head_runs[i]``: one alternation each).

    ``gate_time=False`` reports time ratios without failing on them (a single pair of runs);
    ``allow_figure_changes`` / ``allow_slowdown`` turn those failures into warnings (an intended
    change, acknowledged on the pull request).
    """
    if not base_runs or not head_runs:
        raise ValueError("compare: need at least one base run and one head run")
    names = sorted({n for r in (*base_runs, *head_runs) for n in (*r.benchmarks, *r.outcomes)})
    findings: list[Finding] = []
    rows: list[Row] = []
    skipped: list[str] = []
    fig_sev = WARN if allow_figure_changes else FAIL
    timers = {str((b.get("options") or {}).get("timer")) for r in (*base_runs, *head_runs)
              for b in r.benchmarks.values()}
    if len(timers) > 1:
        findings.append(Finding("(all)", "time", WARN,
                                f"runs used different timers ({', '.join(sorted(timers))}); "
                                "time ratios are not comparable"))

    for name in names:
        group = _group(name, (*base_runs, *head_runs))
        row = Row(benchmark=name, group=group)
        rows.append(row)
        head_status = [(i, *r.status(name)) for i, r in enumerate(head_runs)
                       if r.status(name)[0] != "not_run"]
        base_status = [(i, *r.status(name)) for i, r in enumerate(base_runs)
                       if r.status(name)[0] != "not_run"]
        head_bad = [(i, s, why) for i, s, why in head_status if s in ("failed", "error")]
        base_ok = any(s == "ok" for _, s, _ in base_status)
        head_ok = all(s == "ok" for _, s, _ in head_status)
        if head_bad:
            i, s, why = head_bad[0]
            row.status = s
            findings.append(Finding(name, "status", FAIL,
                                    f"{s} in head run {i + 1} of {len(head_runs)}: {why}"))
            continue
        if not head_ok:
            _, s, why = next(x for x in head_status if x[1] != "ok")
            row.status = s
            if base_ok:
                findings.append(Finding(name, "status", FAIL,
                                        f"measured on base but {s} in head: {why}"))
            elif s == "skipped":
                rows.pop()  # not applicable on either side (or not selected): not a benchmark
                skipped.append(name)
            continue
        if not base_ok:
            _, s, why = next(x for x in base_status if x[1] != "ok")
            row.status = "new"
            findings.append(Finding(name, "status", WARN,
                                    f"not measured on base ({s}: {why}); head only, not compared"))
            continue
        if any(s != "ok" for _, s, _ in base_status):
            i, s, why = next(x for x in base_status if x[1] != "ok")
            findings.append(Finding(name, "status", WARN,
                                    f"{s} in base run {i + 1}: {why}; compared on the others"))

        _compare_time(row, name, base_runs, head_runs, threshold, gate_time, allow_slowdown,
                      findings)
        _compare_figures(row, name, base_runs, head_runs, fig_sev, findings)
        _compare_accuracy(row, name, base_runs, head_runs, accuracy_factor, fig_sev, findings)

    settings = {"threshold": threshold, "time_stat": TIME_STAT, "gate_time": gate_time,
                "timers": sorted(timers), "skipped_on_both_sides": skipped,
                "accuracy_floor_factor": accuracy_factor, "strict_figures": STRICT_FIGURES,
                "alternations": min(len(base_runs), len(head_runs)),
                "allow_figure_changes": allow_figure_changes, "allow_slowdown": allow_slowdown,
                "base_commits": sorted({r.commit for r in base_runs}),
                "head_commits": sorted({r.commit for r in head_runs})}
    order = {FAIL: 0, WARN: 1, INFO: 2}
    findings.sort(key=lambda f: (order[f.severity], f.benchmark))
    return Comparison(rows, findings, settings)


def _compare_time(row: Row, name: str, base_runs: Sequence[Run], head_runs: Sequence[Run],
                  threshold: float, gate_time: bool, allow_slowdown: bool,
                  findings: list[Finding]) -> None:
    ratios, median_ratios = [], []
    for b, h in zip(base_runs, head_runs, strict=False):
        if name in b.benchmarks and name in h.benchmarks:
            tb, th = _stat(b.benchmarks[name], TIME_STAT), _stat(h.benchmarks[name], TIME_STAT)
            if tb and th:
                ratios.append(th / tb)
            mb, mh = _stat(b.benchmarks[name], "median"), _stat(h.benchmarks[name], "median")
            if mb and mh:
                median_ratios.append(mh / mb)
    base_t = [t for r in base_runs if name in r.benchmarks
              if (t := _stat(r.benchmarks[name], TIME_STAT)) is not None]
    head_t = [t for r in head_runs if name in r.benchmarks
              if (t := _stat(r.benchmarks[name], TIME_STAT)) is not None]
    row.base_s = min(base_t) if base_t else None
    row.head_s = min(head_t) if head_t else None
    row.ratios = [round(x, 4) for x in ratios]
    row.ratio = statistics.median(ratios) if ratios else None
    row.pooled_ratio = row.head_s / row.base_s if row.base_s and row.head_s else None
    row.median_ratio = statistics.median(median_ratios) if median_ratios else None
    row.gated = gate_time and row.group in TIME_GROUPS and row.ratio is not None
    if row.group not in TIME_GROUPS or row.ratio is None or row.pooled_ratio is None:
        return
    per = ", ".join(f"{x:.2f}" for x in ratios)
    limit = 1.0 + threshold
    # Both statistics must agree: the median over alternations (robust to one odd alternation)
    # and the ratio of the overall minima (robust to a side that was unlucky in one run).
    if row.ratio > limit and row.pooled_ratio > limit:
        severity = FAIL if row.gated and not allow_slowdown else WARN
        findings.append(Finding(
            name, "time", severity,
            f"slower: x{row.ratio:.2f} {TIME_STAT} time (per alternation {per}; overall "
            f"minimum x{row.pooled_ratio:.2f}) > x{limit:.2f} allowed",
        ))
    elif row.ratio < 1.0 / limit and row.pooled_ratio < 1.0 / limit:
        findings.append(Finding(name, "time", INFO,
                                f"faster: x{row.ratio:.2f} (per alternation {per}; overall "
                                f"minimum x{row.pooled_ratio:.2f})"))


def _compare_figures(row: Row, name: str, base_runs: Sequence[Run], head_runs: Sequence[Run],
                     severity: str, findings: list[Finding]) -> None:
    for key, rtol in STRICT_FIGURES.items():
        b, b_present, b_consistent = _side_value(base_runs, name, key, rtol)
        h, h_present, h_consistent = _side_value(head_runs, name, key, rtol)
        if not b_present and not h_present:
            continue
        row.figures[key] = {"base": b, "head": h}
        if not (b_present and h_present):  # a figure added (or dropped) by the change itself
            findings.append(Finding(name, "figure", INFO,
                                    f"{key} recorded by {'head' if h_present else 'base'} only: "
                                    "not compared"))
            continue
        if not (b_consistent and h_consistent):
            side = "base" if not b_consistent else "head"
            findings.append(Finding(name, "figure", WARN,
                                    f"{key} differs between {side} runs of the same code "
                                    f"(non-deterministic; not gated)"))
            continue
        if not same_figure(b, h, rtol):
            tol = "exact equality" if rtol == 0 else f"relative tolerance {rtol:g}"
            findings.append(Finding(name, "figure", severity,
                                    f"{key} changed: {_fmt(b)} -> {_fmt(h)} (deterministic for "
                                    f"the fixed seed; {tol})"))


def _compare_accuracy(row: Row, name: str, base_runs: Sequence[Run], head_runs: Sequence[Run],
                      factor: float, severity: str, findings: list[Finding]) -> None:
    def first(runs: Sequence[Run], key: str) -> dict[str, Any]:
        for r in runs:
            value = (r.benchmarks.get(name) or {}).get("extra_info", {}).get(key)
            if isinstance(value, Mapping):
                return dict(value)
        return {}

    base_acc, head_acc = first(base_runs, "accuracy"), first(head_runs, "accuracy")
    if not base_acc and not head_acc:
        return
    floors = {**first(base_runs, "accuracy_floor")}
    head_floors = first(head_runs, "accuracy_floor")
    for key in ACCURACY_KEYS:
        b, h = base_acc.get(key), head_acc.get(key)
        floor = max((x for x in (floors.get(key), head_floors.get(key))
                     if isinstance(x, int | float) and math.isfinite(x)), default=None)
        row.figures[key] = {"base": b, "head": h, "floor": floor}
        if b is None and h is None:
            continue
        if h is None:
            findings.append(Finding(name, "accuracy", severity,
                                    f"{key} is not finite in head (base {_fmt(b)})"))
            continue
        if b is None:
            continue  # base could not score it; head can
        if floor is None:
            findings.append(Finding(name, "accuracy", WARN,
                                    f"{key}: no noise floor recorded; not gated"))
            continue
        db, dh = _deviation(key, b), _deviation(key, h)
        allowed = factor * floor
        if dh - db > allowed:
            findings.append(Finding(
                name, "accuracy", severity,
                f"accuracy drift: {key} {_fmt(b)} -> {_fmt(h)} (distance from ideal "
                f"+{dh - db:.3g} > {factor:g} x noise floor {floor:.3g})",
            ))
        elif db - dh > allowed:
            findings.append(Finding(name, "accuracy", INFO,
                                    f"more accurate: {key} {_fmt(b)} -> {_fmt(h)}"))
