"""A model's page (models/<name>.html): its data, the posterior of every method against the
reference, loss curves, a sampler's diagnostics, the metrics table and the reference's provenance.

The page is written in steps, one function each: the data (``_dataset``), the draws it shows
(``load_draws``), the figures (``reports.figures``), the metrics table (``metric_rows``) and the
reference (``reference_view``).
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring.draws import merge_draw_axes
from svi_bench.reports import figures, loader, plots, tables
from svi_bench.reports import predictive as predictive_check
from svi_bench.reports.context import Context, data_key, entry, method_href, model_href, reference_for
from svi_bench.reports.figures import Draws
from svi_bench.reports.tables import Summary, fmt, fmt_speedup


def write_model_page(ctx: Context, model: str, spec) -> None:
    df = ctx.results.df
    has_rows = bool(len(df)) and bool((df["model"] == model).any())
    key = data_key(ctx, model)
    figs = figures.FigureMaker(ctx, model)
    methods = ctx.expected[model]
    summaries = [ctx.summaries[(model, m)] for m in methods]
    ds, ds_error = _dataset(spec, key)
    ref = reference_for(ctx, model)
    draws = load_draws(ctx, model, methods, ref, has_rows)

    data_fig = figures.data_figure(figs, model, spec, ds, ds_error)
    posterior, columns = figures.posterior_figures(figs, model, spec, ds, draws, summaries)
    small = [v for k, v in ctx.timings.items() if k.startswith(f"{model}/corner-")]
    if small:  # the per-method corners' share of the page time the build reports
        ctx.log(f"report: {model} per-method corners: {len(small)} in {sum(small):.1f} s")
    loss_fig = figures.loss_figure(figs, model, draws)
    sampler = _sampler_label(ctx, methods, draws)
    trace_fig, energy_fig = figures.sampler_figures(figs, model, draws.sampler, columns, sampler)

    entries = [entry(ctx, s, "../") for s in summaries]
    html = ctx.env.get_template("model.html").render(
        title=model, root="../", nav=ctx.nav, model=model, spec=spec, has_rows=has_rows,
        about=spec if spec is not None else ctx.manifest.models.get(model),
        sampler=sampler,
        data_key=json.dumps(key, sort_keys=True), latent_dim=_latent_dim(summaries),
        seeds_shown=", ".join(draws.shown) or "none (no ok run)",
        figs={"data": data_fig, **posterior, "loss": loss_fig, "trace": trace_fig,
              "energy": energy_fig},
        methods=[{"name": m, "href": "../" + method_href(m)} for m in methods],
        method_entries=entries, metric_rows=metric_rows(summaries),
        budget_notes=[s.budget_note for s in summaries if s.budget_note],
        ref=reference_view(ref),
        ref_missing="No stored reference for this model and data in "
                    f"{ctx.results.results_dir.name}/references: metrics and verdicts are "
                    "missing or say so.")
    shown = {m: _shown_seed(df, model, m) if has_rows else None for m in methods}
    html = predictive_check.insert(html, predictive_check.page_section(
        ctx, model, methods, summaries, ref, ds, figs,
        lambda m: None if shown[m] is None else _run_row(df, model, m, shown[m])))
    (ctx.out / model_href(model)).write_text(html)


def _dataset(spec, key: dict[str, Any]) -> tuple[Any, str]:
    """(the data the rows were run on, "") or (None, why it could not be made)."""
    if spec is None:
        return None, ""
    try:
        return spec.data_for({"seed": None, **key}), ""
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


# --- the draws shown ----------------------------------------------------------------------------


def load_draws(ctx: Context, model: str, methods: list[str], ref, has_rows: bool) -> Draws:
    """Reference and every ok method at seed 0 (or its first ok seed), with loss traces; the first
    sampler run (``is_sampler_run``) also as ``Draws.sampler``, for its trace and energy."""
    df = ctx.results.df
    draws = Draws()
    if ref is not None:
        ref_draws, why = loader.load_reference_draws(ref)
        if ref_draws is not None:
            draws.chains["reference"] = ref_draws
        else:
            draws.notes.append(why)
    for method in methods:
        seed = _shown_seed(df, model, method) if has_rows else None
        if seed is None:
            continue
        run, why = loader.load_run(ctx.results.results_dir, _run_row(df, model, method, seed))
        if run is None:
            draws.notes.append(f"{method}: {why}")
            continue
        draws.shown.append(f"{method} seed {seed}")
        draws.chains[method] = merge_draw_axes(run.draws, 2) if run.chains else run.draws
        if draws.sampler is None and is_sampler_run(ctx, method, run):
            draws.sampler = (method, run.draws, run.other)
        if "losses" in run.other:
            draws.losses[method] = run.other["losses"]
            draws.converged[method] = _row_value(df, model, method, seed, "converged_step")
    draws.colors = plots.colors_for(list(draws.chains), ctx.baseline)
    return draws


def is_sampler_run(ctx: Context, method: str, run: loader.StoredRun) -> bool:
    """Whether a run's chains get a trace and energy plot: stored with chains, by a method of the
    "mcmc" family (or one the manifest does not record: its artifact alone decides)."""
    return run.chains and ctx.manifest.family(method) in ("mcmc", "")


def _sampler_label(ctx: Context, methods: list[str], draws: Draws) -> str:
    """Whose diagnostics the page shows ("NUTS"): the sampler run's method, else the first of the
    "mcmc" family, else the baseline (a folder without a manifest), upper-cased as a heading."""
    if draws.sampler is not None:
        return draws.sampler[0].upper()
    mcmc = [m for m in methods if ctx.manifest.family(m) == "mcmc"]
    return (mcmc[0] if mcmc else ctx.baseline or "mcmc").upper()


def _shown_seed(df, model: str, method: str) -> int | None:
    rows = df[(df["model"] == model) & (df["method"] == method) & (df["status"] == "ok")]
    seeds = sorted(int(s) for s in rows["seed"].dropna())
    if not seeds:
        return None
    return 0 if 0 in seeds else seeds[0]


def _run_row(df, model: str, method: str, seed: int) -> dict:
    rows = df[(df["model"] == model) & (df["method"] == method) & (df["seed"] == seed)]
    return rows.iloc[0].to_dict()


def _row_value(df, model: str, method: str, seed: int, col: str) -> float:
    if col not in df.columns:
        return math.nan
    rows = df[(df["model"] == model) & (df["method"] == method) & (df["seed"] == seed)]
    if not len(rows):
        return math.nan
    try:
        return float(rows[col].iloc[0])
    except (TypeError, ValueError):
        return math.nan


# --- the metrics table and the reference --------------------------------------------------------


def metric_rows(summaries: list[Summary]) -> list[dict[str, Any]]:
    """One row per table metric any method has: label, unit, meaning and a cell per method."""
    out = []
    for name, label in tables.TABLE_METRICS:
        values = [s.value(name) for s in summaries]
        if not any(np.isfinite(v) for v in values):
            continue
        unit, description = tables.metric_info(name)
        cells = []
        for s, v in zip(summaries, values, strict=True):
            floor = s.value(f"{name}_floor")
            lo, hi = s.spread.get(name, (math.nan, math.nan))
            title = f"{s.method}: median {fmt(v)}"
            if np.isfinite(lo) and lo != hi:
                title += f", range {fmt(lo)} … {fmt(hi)}"
            if name.startswith("speedup_"):
                value = fmt_speedup(v)
            else:
                value = fmt(v)
            cells.append({"value": value, "floor": fmt(floor) if np.isfinite(floor) else "",
                          "title": title})
        out.append({"label": label, "unit": unit, "description": description, "cells": cells})
    return out


def reference_view(ref) -> dict[str, Any] | None:
    """The reference's provenance and checks as the page lists them."""
    if ref is None:
        return None
    p = ref.provenance
    fields = []
    for key in ("method", "precision", "advice", "draws", "seed", "data", "data_hash",
                "source_hash", "settings", "gates", "grid_points", "built_at", "build_s", "versions"):
        if key in p:
            value = p[key]
            if isinstance(value, float):
                value = fmt(value)
            elif isinstance(value, (dict, list)):
                value = json.dumps(value, sort_keys=True)
            fields.append((key, str(value)))
    fields.append(("file", ref.json_path.name))
    checks = []
    for key, value in sorted((p.get("checks") or {}).items()):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            checks.append((key, fmt(value, 4)))
        else:
            text = json.dumps(value) if isinstance(value, (list, dict)) else str(value)
            checks.append((key, text))
    return {"kind": str(p.get("kind", "?")), "quality": str(p.get("quality", "?")),
            "ok": bool(p.get("ok", False)),
            "failed_checks": [str(c) for c in p.get("failed_checks") or []],
            "fields": fields, "checks": checks}


def _latent_dim(summaries: list[Summary]) -> str:
    for s in summaries:
        v = s.value("latent_dim")
        if np.isfinite(v):
            return str(int(v))
    return ""
