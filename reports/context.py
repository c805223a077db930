"""What every page of the report shares: the build context, the links between pages, one cell per
(model, method), and each model's data key and stored reference."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring.verdict import LEVELS
from svi_bench.reports import loader
from svi_bench.reports.loader import Results, slug
from svi_bench.reports.manifest import Manifest
from svi_bench.reports.tables import Summary, fmt, fmt_speedup

RHAT_OK = 1.01  # MCMC cells flag a larger max R-hat (or any divergence) in red


@dataclass
class Context:
    """What the page writers read: the results, the page lists, the summaries and the nav bar."""

    results: Results
    out: Path
    models: list[str]
    methods: list[str]
    expected: dict[str, list[str]]
    summaries: dict[tuple[str, str], Summary]
    nav: dict[str, Any]
    env: Any
    log: Callable[[str], None]
    timings: dict[str, float] = field(default_factory=dict)
    manifest: Manifest = field(default_factory=Manifest)  # the folder's method and model facts
    baseline: str | None = None  # the method speed-ups are relative to (Manifest.baseline)


def registry(results_dir: Path | None = None, notes: list[str] | None = None) -> dict[str, Any]:
    """The registered models plus those a results folder records (``models.json``: user files
    and modules re-imported when unchanged); what cannot be restored is one line in ``notes``."""
    from svi_bench.models import REGISTRY

    if results_dir is None:
        return REGISTRY
    from svi_bench.benchmarks.grid.model_sources import restore

    specs, found = restore(Path(results_dir))
    if notes is not None:
        notes.extend(found)
    return {**REGISTRY, **specs}


def model_href(model: str) -> str:
    return f"models/{slug(model)}.html"


def method_href(method: str) -> str:
    return f"methods/{slug(method)}.html"


#: The per-method count columns of the leaderboard: (heading, key of ``new_counts``), the verdict
#: levels in their order first.
COUNT_COLUMNS: tuple[tuple[str, str], ...] = (*((level, level) for level in LEVELS),
                                              ("failed", "failed"), ("n/a", "na"),
                                              ("not run", "missing"))


def new_counts() -> dict[str, int]:
    return dict.fromkeys((key for _, key in COUNT_COLUMNS), 0)


def count(counts: dict[str, int], s: Summary) -> None:
    """Add one (model, method) to verdict and status counts (``new_counts``)."""
    if s.status == "missing":
        counts["missing"] += 1
    elif s.status == "not_applicable":
        counts["na"] += 1
    elif s.status == "failed":
        counts["failed"] += 1
    elif s.verdict in counts:
        counts[s.verdict] += 1


def memory_text(s: Summary) -> str:
    """What a cell's run needed in memory (medians over ok seeds): the process's peak and what
    the run added to it, and the buffers XLA's analysis says its program keeps alive at once."""
    parts = []
    for column, label in (("peak_rss_bytes", "process peak"), ("rss_growth_bytes", "run added"),
                          ("xla_peak_bytes", "program buffers")):
        value = s.value(column)
        if np.isfinite(value):
            parts.append(f"{label} {value / 2**20:.1f} MiB")
    return ", ".join(parts)


def entry(ctx: Context, s: Summary, root: str) -> dict[str, Any]:
    """One (model, method) cell as the templates show it; ``root`` leads back to the report root.
    ``grouped``: the method shares its leaderboard column (the cell names it by ``short``);
    ``baseline``: the cell shows its own cost, not speed-ups; ``mcmc``: it shows R-hat and ESS."""
    name, value, floor = s.key_metric()
    column = ctx.manifest.column_of(s.method)
    title = f"{s.model} × {s.method}: {s.label} ({s.counts_text})"
    if s.reason:
        title += f" — {s.reason}"
    if s.warnings:
        title += f" — warnings: {'; '.join(s.warnings)}"
    if memory := memory_text(s):
        title += f" — memory: {memory}"
    return {
        "s": s,
        "title": title,
        "memory": memory_text(s),
        "grouped": column != s.method,
        "baseline": s.method == ctx.baseline,
        "mcmc": is_mcmc(ctx.manifest, s),
        "short": s.method.removeprefix(column + ":"),
        "method_href": method_href(s.method),
        "method_href_model": root + method_href(s.method),
        "metric_name": name,
        "metric": fmt(value),
        "floor": fmt(floor),
        "khat": fmt(s.value("psis_khat")),
        **khat_badge(s),
        "speed_wall": fmt_speedup(s.value("speedup_wall")),
        "speed_run": fmt_speedup(s.value("speedup_run")),
        "speed_grad": fmt_speedup(s.value("speedup_grad")),
        "wall": fmt(s.value("wall_s")),
        "grads": fmt(s.value("grad_evals")),
        "rhat": fmt(s.value("max_rhat"), 4),
        "ess": fmt(round(s.value("min_ess_bulk")) if np.isfinite(s.value("min_ess_bulk"))
                   else math.nan),
        "mcmc_suspect": bool(s.value("max_rhat") > RHAT_OK or s.value("divergences") > 0),
        "note_id": 0,
    }


def is_mcmc(manifest: Manifest, s: Summary) -> bool:
    """Whether a cell is a sampler's, with R-hat and ESS to show: its recorded family, or for a
    method the manifest does not record, whether its runs stored any."""
    family = manifest.family(s.method)
    if family:
        return family == "mcmc"
    return bool(np.isfinite(s.value("max_rhat")) or np.isfinite(s.value("min_ess_bulk")))


def khat_badge(s: Summary) -> dict[str, str]:
    """The k-hat badge of a cell: its level (``verdict.khat_level`` of the median over seeds) and
    a tooltip saying that k-hat is a diagnostic, not part of the verdict."""
    from svi_bench.benchmarks.scoring.verdict import KHAT_GOOD, KHAT_UNRELIABLE, khat_level

    k = s.value("psis_khat")
    low, high = s.spread.get("psis_khat", (math.nan, math.nan))
    over = f" (seeds {fmt(low)} to {fmt(high)})" if low != high else ""
    return {"khat_level": khat_level(k) or "none",
            "khat_title": f"PSIS k-hat {fmt(k)}, median over seeds{over}: a reference-free "
                          f"diagnostic of q's tails, not part of the verdict. Above "
                          f"{KHAT_UNRELIABLE} importance sampling from q is unreliable, at most "
                          f"{KHAT_GOOD} good (Yao et al. 2018)."}


def data_key(ctx: Context, model: str) -> dict[str, Any]:
    """The data key of the model's rows (the first that parses), else its registered default."""
    df = ctx.results.df
    rows = df[df["model"] == model] if len(df) else df
    for text in rows.get("data", []):
        key = loader.parse_json(text)
        if key:
            return key
    spec = registry().get(model)
    if spec is not None:
        return spec.data_key()
    return {}


def reference_for(ctx: Context, model: str):
    df = ctx.results.df
    precisions = df.loc[df["model"] == model, "precision"] if "precision" in df else []
    precision = precisions.mode().iloc[0] if len(precisions) and precisions.notna().any() \
        else "float32"
    return loader.find_reference(ctx.results, model, data_key(ctx, model), str(precision))


def reference_badge(ctx: Context, model: str) -> dict[str, Any] | None:
    """The leaderboard's reference column for a model, or None without a stored reference."""
    ref = reference_for(ctx, model)
    if ref is None:
        return None
    p = ref.provenance
    failed = [str(c) for c in p.get("failed_checks") or []]
    title = ("reference passed its checks" if p.get("ok")
             else "reference failed: " + "; ".join(failed))
    return {"kind": str(p.get("kind", "?")), "quality": str(p.get("quality", "")),
            "ok": bool(p.get("ok", False)), "title": title}
