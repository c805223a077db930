"""Aggregate the results table for the pages: one summary per (model, method) over seeds.

Metrics are medians over the ok seeds; counts say how many seeds were ok, failed or not
applicable. Speed-ups compare with the baseline method on the same model (the one the results
folder's manifest marks: NUTS in the suite): wall time (compile + run), run time only, and
gradient evaluations. Any column may be missing or NaN (failed rows, older results).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from svi_bench.benchmarks.scoring import columns
from svi_bench.benchmarks.scoring import metrics as bench_metrics
from svi_bench.benchmarks.scoring.evaluate import has_sampler_health, sampler_health
from svi_bench.benchmarks.scoring.verdict import LEVELS
from svi_bench.benchmarks.scoring.verdict import RANK as VERDICT_RANK
from svi_bench.reports.manifest import LEGACY_BASELINE

#: Metrics of the per-model table, in display order: (column, label). Rows whose values are all
#: missing are dropped. Agreement metrics show their noise floor (column ``<name>_floor``).
TABLE_METRICS: tuple[tuple[str, str], ...] = (
    ("wall_s", "wall time (compile + run)"),
    ("compile_s", "compile"),
    ("run_s", "run"),
    ("grad_evals", "gradient evaluations"),
    ("speedup_wall", "speed-up over NUTS, wall"),
    ("speedup_run", "speed-up over NUTS, run only"),
    ("speedup_grad", "speed-up over NUTS, gradient evaluations"),
    *((k, k) for k in bench_metrics.AGREEMENT_KEYS),
    ("psis_khat", "psis_khat (a diagnostic, not judged)"),
    ("kl_exact", "kl_exact"),
    ("pred_prob_mad", "pred_prob_mad"),
    ("test_lpd", "test_lpd"),
    ("ref_test_lpd", "ref_test_lpd"),
    ("test_accuracy", "test_accuracy"),
    ("final_elbo", "final_elbo"),
    ("final_loss_mean", "final_loss_mean"),
    ("final_loss_sd", "final_loss_sd"),
    ("converged_step", "converged_step"),
    ("nan_count", "nan_count"),
    ("divergences", "divergences"),
    ("max_rhat", "max_rhat"),
    ("min_ess_bulk", "min_ess_bulk"),
    ("min_ess_tail", "min_ess_tail"),
    ("min_bfmi", "min_bfmi"),
    ("ess_per_second", "ess_per_second"),
    ("ess_per_grad_eval", "ess_per_grad_eval"),
    ("latent_dim", "latent_dim"),
    ("num_draws", "num_draws"),
    ("peak_rss_bytes", "peak memory of the process during the run"),
    ("rss_growth_bytes", "memory the run added"),
    ("xla_peak_bytes", "program buffers alive at once (XLA)"),
    ("xla_flops", "program flops (XLA, each operation once)"),
    ("xla_bytes_accessed", "program bytes accessed (XLA, each operation once)"),
)


def metric_info(name: str) -> tuple[str, str]:
    """(unit, description) of a table metric, from the one table of columns."""
    return columns.info(name)


def _num(df: pd.DataFrame, col: str) -> pd.Series:
    if col not in df.columns:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    return pd.to_numeric(df[col], errors="coerce").astype("float64")


def _median(values: pd.Series) -> float:
    values = values[np.isfinite(values)] if len(values) else values
    return float(values.median()) if len(values) else math.nan


def _text(value: Any) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return ""
    return str(value)


def _unique(items: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for item in items:
        if item:
            seen.setdefault(item, None)
    return list(seen)


@dataclass
class Summary:
    """One (model, method) over its seeds."""

    model: str
    method: str
    seeds: list[int] = field(default_factory=list)
    n_ok: int = 0
    n_failed: int = 0
    n_na: int = 0
    verdict: str = ""  # the worst verdict over ok seeds ("" if none judged)
    verdict_counts: dict[str, int] = field(default_factory=dict)
    verdict_reasons: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # failed seeds' reasons
    na_reasons: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    values: dict[str, float] = field(default_factory=dict)  # medians over ok seeds
    spread: dict[str, tuple[float, float]] = field(default_factory=dict)  # (min, max) over seeds
    reference_ok: bool | None = None
    budget_note: str = ""  # a sampler that failed its own health on every ok seed: why

    @property
    def n_seeds(self) -> int:
        return len(self.seeds)

    @property
    def status(self) -> str:
        """missing, not_applicable, failed, ok or partial (some seeds failed)."""
        if not self.seeds:
            return "missing"
        if self.n_ok == 0:
            return "failed" if self.n_failed else "not_applicable"
        return "partial" if self.n_failed else "ok"

    @property
    def css(self) -> str:
        if self.status in ("ok", "partial") and self.verdict:
            return f"verdict-{self.verdict}"
        return {"missing": "status-missing", "not_applicable": "status-na",
                "failed": "status-failed"}.get(self.status, "status-unjudged")

    @property
    def label(self) -> str:
        """Short text for a table cell."""
        if self.status == "missing":
            return "not run"
        if self.status == "not_applicable":
            return "n/a"
        if self.status == "failed":
            return "failed"
        return self.verdict or "not judged"

    @property
    def counts_text(self) -> str:
        if not self.seeds:
            return "no run"
        parts = []
        for level in LEVELS:
            if self.verdict_counts.get(level):
                parts.append(f"{self.verdict_counts[level]} {level}")
        if self.n_failed:
            parts.append(f"{self.n_failed} failed")
        if self.n_na:
            parts.append(f"{self.n_na} n/a")
        return ", ".join(parts) + f" of {self.n_seeds} seed{'s' if self.n_seeds != 1 else ''}"

    @property
    def reason(self) -> str:
        """Why the cell looks as it does (title= text and the list below the table)."""
        if self.status == "missing":
            return "no row in the results table"
        if self.status == "not_applicable":
            return "; ".join(self.na_reasons)
        parts = []
        if self.errors:
            parts.append("failed: " + "; ".join(self.errors))
        if self.verdict_reasons:
            parts.append("; ".join(self.verdict_reasons))
        return " | ".join(parts)

    def key_metric(self) -> tuple[str, float, float]:
        """(name, value, floor) of the headline agreement metric (NaN if none)."""
        for name in ("w1_max", "std_mean_err_max", "pred_prob_mad"):
            value = self.values.get(name, math.nan)
            if np.isfinite(value):
                return name, value, self.values.get(f"{name}_floor", math.nan)
        return "w1_max", math.nan, math.nan

    def value(self, name: str) -> float:
        return self.values.get(name, math.nan)


def summarise(df: pd.DataFrame, model: str, method: str, baseline: Summary | None = None
              ) -> Summary:
    """The Summary of the rows of ``df`` for ``model`` x ``method`` (``df`` may hold others),
    with speed-ups over ``baseline`` (the baseline method's Summary on the model) if given."""
    s = Summary(model, method)
    rows = df[(df["model"] == model) & (df["method"] == method)] if len(df) else df
    if rows is None or not len(rows):
        return s
    rows = rows.sort_values("seed")
    s.seeds = [int(x) for x in rows["seed"].dropna()]
    status = rows["status"].astype("string").fillna("")
    s.n_ok = int((status == "ok").sum())
    s.n_failed = int((status == "failed").sum())
    s.n_na = int((status == "not_applicable").sum())
    errors = rows["error"] if "error" in rows.columns else pd.Series("", index=rows.index)
    s.errors = _unique(_text(e) for e, st in zip(errors, status, strict=True) if st == "failed")
    if s.n_failed and not s.errors:
        s.errors = ["no reason recorded"]
    s.na_reasons = _unique(_text(e) for e, st in zip(errors, status, strict=True)
                           if st == "not_applicable")
    if s.n_na and not s.na_reasons:
        s.na_reasons = ["not applicable (no reason recorded)"]
    ok = rows[status == "ok"]
    if "warning" in ok.columns:
        s.warnings = _unique(_text(w) for w in ok["warning"])
    if "verdict" in ok.columns:
        verdicts = [_text(v) for v in ok["verdict"]]
        for v in verdicts:
            if v in VERDICT_RANK:
                s.verdict_counts[v] = s.verdict_counts.get(v, 0) + 1
        judged = [v for v in verdicts if v in VERDICT_RANK]
        if judged:
            s.verdict = max(judged, key=VERDICT_RANK.__getitem__)
        if "verdict_reason" in ok.columns:
            worst = [_text(r) for v, r in zip(verdicts, ok["verdict_reason"], strict=True)
                     if v == s.verdict or v not in VERDICT_RANK]
            s.verdict_reasons = _unique(worst)
    s.budget_note = budget_note(ok, method)
    if "reference_ok" in ok.columns and len(ok):
        flags = [f for f in ok["reference_ok"] if f is not None and f is not pd.NA
                 and not (isinstance(f, float) and math.isnan(f))]
        if flags:
            s.reference_ok = all(bool(f) for f in flags)

    wall = _num(ok, "compile_s") + _num(ok, "run_s")
    columns = {"wall_s": wall}
    for name in set(df.columns) | {n for n, _ in TABLE_METRICS}:
        if name in ("wall_s",) or name.startswith("speedup_"):
            continue
        if name in df.columns:
            col = _num(ok, name)
            if col.notna().any():
                columns[name] = col
    for name, col in columns.items():
        finite = col[np.isfinite(col)]
        if len(finite):
            s.values[name] = float(finite.median())
            s.spread[name] = (float(finite.min()), float(finite.max()))
    if baseline is not None:
        for key, col in (("speedup_wall", "wall_s"), ("speedup_run", "run_s"),
                         ("speedup_grad", "grad_evals")):
            ours, theirs = s.value(col), baseline.value(col)
            if np.isfinite(ours) and np.isfinite(theirs) and ours > 0:
                s.values[key] = theirs / ours
    return s


def budget_note(ok: pd.DataFrame, method: str) -> str:
    """Where an MCMC method's chains failed their own health checks on every ok seed, the row
    says the profile's budget was too small for this model, not what the posterior is: a sentence
    naming the budget and the failed checks ("" otherwise, or with no ok seed)."""
    records = ok.to_dict("records")
    if not records or not all(has_sampler_health(r) for r in records):
        return ""
    health = [sampler_health(r) for r in records]
    if not all(h is not None and h[0] == "fail" for h in health):
        return ""
    first = records[0]
    try:
        settings = json.loads(_text(first.get("settings")) or "{}")
    except ValueError:
        settings = {}
    budget = ", ".join(f"{k} {settings[k]}" for k in ("num_chains", "num_warmup", "num_samples")
                       if k in settings)
    reasons = "; ".join(_unique(h[1] for h in health if h is not None))
    return (f"{first.get('model')} x {method}: the chains failed their own health checks on "
            f"every seed ({len(records)} of {len(records)}: {reasons}) at the "
            f"{_text(first.get('profile')) or 'run'} profile's budget"
            f"{f' ({budget})' if budget else ''}. {method} needs more than this budget on this "
            "model: its row says the chains are too short, not what the posterior is; every "
            "method here is judged against the reference, not against these chains.")


def summarise_all(df: pd.DataFrame, models: Iterable[str], methods: Iterable[str],
                  baseline: str | None = LEGACY_BASELINE) -> dict[tuple[str, str], Summary]:
    """Summaries of every (model, method), the baseline method's first so that the speed-ups can
    use it (none without a baseline; the default is a folder's without a manifest)."""
    out: dict[tuple[str, str], Summary] = {}
    methods = list(methods)
    for model in models:
        base = None
        if baseline is not None:
            base = summarise(df, model, baseline)
            out[(model, baseline)] = (summarise(df, model, baseline, base)
                                      if baseline in methods else base)
        for method in methods:
            if method != baseline:
                out[(model, method)] = summarise(df, model, method, base)
    return out


def fmt(value: Any, digits: int = 3) -> str:
    """A compact number: '-' for missing, 3 significant digits, integers without decimals."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return "–" if value is None or value is pd.NA else str(value)
    if math.isnan(x):
        return "–"
    if math.isinf(x):
        return "∞" if x > 0 else "-∞"
    if float(x).is_integer() and abs(x) < 1e12:
        return f"{x:,.0f}"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{digits - 1}e}"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def fmt_speedup(value: float) -> str:
    if not np.isfinite(value):
        return "–"
    if value >= 10:
        return f"{value:,.0f}×"
    return f"{value:.2g}×"
