"""Build the static report folder: index.html, models/<name>.html, methods/<name>.html, img/.

Reads only what ``python -m benchmarks run`` stored (results table, run artifacts, references);
never runs inference. Any plot that fails becomes a visible note; a missing or failed run shows as
such; the build fails only on unusable input (ReportError, exit 2 in the CLI).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.scoring.draws import component_columns, merge_draw_axes
from reports import environment as envinfo
from reports import loader, plots, tables, templates
from reports.loader import ReportError, Results, slug
from reports.tables import Summary, fmt, fmt_speedup

__all__ = ["ReportError", "build_report"]

MANUAL_COLUMN = "manual"
MARKER = ".svi-bench-report"  # marks a folder the builder may overwrite
RHAT_OK = 1.01  # NUTS cells flag a larger max R-hat (or any divergence) in red


@dataclass
class Figure:
    """One image of a page, or the reason there is none."""

    alt: str
    src: str = ""
    caption: str = ""
    error: str = ""  # the plot raised: "plot failed: <error>"
    note: str = ""  # nothing to plot, and why
    notes: list[str] = field(default_factory=list)


@dataclass
class Context:
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


def _registry() -> dict[str, Any]:
    from models import REGISTRY

    return REGISTRY


def _expected_methods(spec) -> list[str]:
    from benchmarks.inference.methods import methods_for

    return methods_for(spec)


def model_href(model: str) -> str:
    return f"models/{slug(model)}.html"


def method_href(method: str) -> str:
    return f"methods/{slug(method)}.html"


def _column_of(method: str) -> str:
    from benchmarks.inference.methods import MANUAL_PREFIX

    return MANUAL_COLUMN if method.startswith(MANUAL_PREFIX) else method


# --- the entry point ----------------------------------------------------------------------------


def build_report(results_dir: Path, out_dir: Path, history_dir: Path | None = None,
                 profile: str | None = None, log: Callable[[str], None] = lambda m: None) -> Path:
    """Write the report for ``results_dir`` into ``out_dir``; returns the path of index.html."""
    start = time.perf_counter()
    results = loader.load(results_dir, profile)
    out_dir = Path(out_dir)
    if out_dir.resolve() == Path(results_dir).resolve():
        raise ReportError("--out must differ from --results (the report would mix with the runs)")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise ReportError(f"--out {out_dir} is a non-empty folder that holds no report; "
                          "choose a new or empty folder (a previous report is overwritten)")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / MARKER).write_text("written by python -m reports build; safe to overwrite\n")
        for sub in ("models", "methods", "img"):
            if (out_dir / sub).exists():
                shutil.rmtree(out_dir / sub)
            (out_dir / sub).mkdir()
    except OSError as exc:
        raise ReportError(
            f"cannot write the report folder {out_dir}: {exc.strerror or exc}") from None

    registry = _registry()
    df = results.df
    present_models = [str(m) for m in df["model"].dropna().unique()] if len(df) else []
    models = list(registry) + sorted(m for m in present_models if m not in registry)
    expected = {m: (_expected_methods(registry[m]) if m in registry else []) for m in models}
    for m in models:
        rows = df[df["model"] == m] if len(df) else df
        present = {str(x) for x in rows["method"].dropna()}
        expected[m] = tables.method_order(set(expected[m]) | present)
    methods = tables.method_order({x for ms in expected.values() for x in ms})
    summaries: dict[tuple[str, str], Summary] = {}
    for m in models:
        summaries.update(tables.summarise_all(df, [m], expected[m]))

    (out_dir / "style.css").write_text(templates.CSS)
    _copy_results_csv(results, out_dir)
    history_rel, history_note = _history(history_dir, out_dir, log)
    nav = {
        "models": [{"name": m, "href": model_href(m)} for m in models],
        "methods": [{"name": m, "href": method_href(m)} for m in methods],
        "history": history_rel,
        "profile": results.profile or "unknown",
        "digest": envinfo.settings_digest(df),
        "built": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    ctx = Context(results, out_dir, models, methods, expected, summaries, nav,
                  templates.environment(), log)

    for model in models:
        t0 = time.perf_counter()
        _write_model_page(ctx, model, registry.get(model))
        ctx.timings[model] = time.perf_counter() - t0
        log(f"report: {model} page in {ctx.timings[model]:.1f} s")
    for method in methods:
        _write_method_page(ctx, method, registry)
    index = out_dir / "index.html"
    _write_index(ctx, index, history_note)
    log(f"report: built in {time.perf_counter() - start:.1f} s -> {index}")
    return index


def _copy_results_csv(results: Results, out_dir: Path) -> None:
    src = results.results_dir / "results.csv"
    try:
        if src.is_file():
            shutil.copyfile(src, out_dir / "results.csv")
        else:
            results.df.to_csv(out_dir / "results.csv", index=False)
    except OSError:
        (out_dir / "results.csv").write_text("results.csv could not be copied\n")


def _history(history_dir: Path | None, out_dir: Path, log) -> tuple[str, str]:
    """(relative link to history.html or "", note for the index)."""
    if history_dir is None:
        return "", ""
    try:
        from benchmarks.regress.history import build_history
    except ImportError as exc:
        return "", f"not available ({type(exc).__name__}: {exc})"
    try:
        path = build_history(Path(history_dir), out_dir)
    except Exception as exc:  # another module's failure must not stop the report
        log(f"report: runtime history failed: {type(exc).__name__}: {exc}")
        return "", f"failed to build ({type(exc).__name__}: {exc})"
    if path is None:
        return "", f"no stored benchmark runs in {history_dir}"
    try:
        rel = Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return "", f"history page {path} is outside the report folder"
    return rel, ""


# --- cells and index ----------------------------------------------------------------------------


def _entry(s: Summary, root: str) -> dict[str, Any]:
    from benchmarks.inference.methods import MANUAL_PREFIX

    name, value, floor = s.key_metric()
    title = f"{s.model} × {s.method}: {s.label} ({s.counts_text})"
    if s.reason:
        title += f" — {s.reason}"
    if s.warnings:
        title += f" — warnings: {'; '.join(s.warnings)}"
    return {
        "s": s,
        "title": title,
        "manual": s.method.startswith(MANUAL_PREFIX),
        "nuts": s.method == "nuts",
        "short": s.method[len(MANUAL_PREFIX):] if s.method.startswith(MANUAL_PREFIX) else s.method,
        "method_href": method_href(s.method),
        "method_href_model": root + method_href(s.method),
        "metric_name": name,
        "metric": fmt(value),
        "floor": fmt(floor),
        "khat": fmt(s.value("psis_khat")),
        "speed_wall": fmt_speedup(s.value("speedup_wall")),
        "speed_run": fmt_speedup(s.value("speedup_run")),
        "speed_grad": fmt_speedup(s.value("speedup_grad")),
        "wall": fmt(s.value("wall_s")),
        "grads": fmt(s.value("grad_evals")),
        "rhat": fmt(s.value("max_rhat"), 4),
        "ess": fmt(round(s.value("min_ess_bulk")) if np.isfinite(s.value("min_ess_bulk"))
                   else math.nan),
        "nuts_suspect": bool(s.value("max_rhat") > RHAT_OK or s.value("divergences") > 0),
        "note_id": 0,
    }


def _reference_badge(ctx: Context, model: str) -> dict[str, Any] | None:
    ref = _reference_for(ctx, model)
    if ref is None:
        return None
    p = ref.provenance
    failed = [str(c) for c in p.get("failed_checks") or []]
    title = ("reference passed its checks" if p.get("ok")
             else "reference failed: " + "; ".join(failed))
    return {"kind": str(p.get("kind", "?")), "quality": str(p.get("quality", "")),
            "ok": bool(p.get("ok", False)), "title": title}


def _data_key(ctx: Context, model: str) -> dict[str, Any]:
    df = ctx.results.df
    rows = df[df["model"] == model] if len(df) else df
    for text in rows.get("data", []):
        key = loader.parse_json(text)
        if key:
            return key
    spec = _registry().get(model)
    if spec is not None:
        return spec.data_key()
    return {}


def _reference_for(ctx: Context, model: str):
    return loader.find_reference(ctx.results, model, _data_key(ctx, model))


def _write_index(ctx: Context, path: Path, history_note: str) -> None:
    columns: list[str] = []
    for m in ctx.methods:
        col = _column_of(m)
        if col not in columns:
            columns.append(col)
    rows, notes = [], []
    for model in ctx.models:
        cells = []
        for col in columns:
            entries = []
            for method in ctx.expected[model]:
                if _column_of(method) != col:
                    continue
                e = _entry(ctx.summaries[(model, method)], "")
                s = e["s"]
                if s.status in ("failed", "not_applicable", "partial") or (
                        s.n_ok and not s.verdict):
                    e["note_id"] = len(notes) + 1
                    notes.append({"id": e["note_id"], "model": model, "method": method,
                                  "model_href": model_href(model),
                                  "method_href": method_href(method),
                                  "label": s.label if s.status != "partial"
                                  else f"{s.n_failed} of {s.n_seeds} seeds failed",
                                  "text": s.reason or "no reason recorded"})
                entries.append(e)
            if not entries and col != MANUAL_COLUMN:
                missing = Summary(model, col)
                entries.append(_entry(missing, ""))
            cells.append(entries)
        rows.append({"model": model, "href": model_href(model), "registered": model in _registry(),
                     "ref": _reference_badge(ctx, model), "cells": cells})
    column_heads = [{"name": "manual guides" if c == MANUAL_COLUMN else c,
                     "href": "" if c == MANUAL_COLUMN else method_href(c)} for c in columns]
    method_rows = []
    for method in ctx.methods:
        counts = {"pass": 0, "warn": 0, "fail": 0, "failed": 0, "na": 0, "missing": 0}
        walls, grads = [], []
        for model in ctx.models:
            if method not in ctx.expected[model]:
                continue
            s = ctx.summaries[(model, method)]
            _count(counts, s)
            if np.isfinite(s.value("speedup_wall")):
                walls.append(s.value("speedup_wall"))
            if np.isfinite(s.value("speedup_grad")):
                grads.append(s.value("speedup_grad"))
        method_rows.append({"name": method, "href": method_href(method), "counts": counts,
                            "speed_wall": fmt_speedup(_median(walls)),
                            "speed_grad": fmt_speedup(_median(grads))})
    html = ctx.env.get_template("index.html").render(
        title="Leaderboard", root="", nav=ctx.nav, columns=column_heads, rows=rows, notes=notes,
        method_rows=method_rows, environment=envinfo.describe(ctx.results),
        history_note=history_note, reference_notes=ctx.results.reference_notes)
    path.write_text(html)


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan


def _count(counts: dict[str, int], s: Summary) -> None:
    if s.status == "missing":
        counts["missing"] += 1
    elif s.status == "not_applicable":
        counts["na"] += 1
    elif s.status == "failed":
        counts["failed"] += 1
    elif s.verdict in counts:
        counts[s.verdict] += 1


# --- method pages -------------------------------------------------------------------------------


def _method_description(method: str, registry) -> str:
    from benchmarks.inference.methods import AUTOGUIDES, MANUAL_PREFIX

    if method == "nuts":
        return ("NumPyro's No-U-Turn Sampler: the MCMC baseline every guide is compared with "
                "(speed-ups are relative to it).")
    if method in AUTOGUIDES:
        cls = AUTOGUIDES[method]
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        doc = " ".join(doc.split())
        return f"NumPyro autoguide {cls.__name__}: {doc}" if doc else f"NumPyro {cls.__name__}."
    if method.startswith(MANUAL_PREFIX):
        guide = method[len(MANUAL_PREFIX):]
        owners = [spec for spec in registry.values() if guide in spec.guides]
        docs = []
        for spec in owners:
            doc = (spec.guides[guide].__doc__ or "").strip().split("\n\n")[0]
            docs.append(f"{spec.name}: {' '.join(doc.split()) or 'no docstring'}")
        return f"Hand-written guide '{guide}'. " + " ".join(docs)
    return "A method not known to the current code."


def _write_method_page(ctx: Context, method: str, registry) -> None:
    rows = []
    counts = {"pass": 0, "warn": 0, "fail": 0, "failed": 0, "na": 0, "missing": 0}
    for model in ctx.models:
        if method not in ctx.expected[model]:
            continue
        s = ctx.summaries[(model, method)]
        _count(counts, s)
        e = _entry(s, "../")
        rows.append({**e, "model": model, "href": "../" + model_href(model),
                     "ref_ok": s.reference_ok})
    labels = {"na": "not applicable", "missing": "not run", "failed": "failed runs"}
    html = ctx.env.get_template("method.html").render(
        title=method, root="../", nav=ctx.nav, method=method,
        description=_method_description(method, registry),
        counts=[(labels.get(k, k), v) for k, v in counts.items()], rows=rows)
    (ctx.out / method_href(method)).write_text(html)


# --- model pages --------------------------------------------------------------------------------


def _metric_rows(summaries: list[Summary]) -> list[dict[str, Any]]:
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


def _reference_view(ref) -> dict[str, Any] | None:
    if ref is None:
        return None
    p = ref.provenance
    fields = []
    for key in ("method", "draws", "seed", "data", "data_hash", "source_hash", "settings", "gates",
                "grid_points", "built_at", "build_s", "versions"):
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


def _shown_seed(df, model: str, method: str) -> int | None:
    rows = df[(df["model"] == model) & (df["method"] == method) & (df["status"] == "ok")]
    seeds = sorted(int(s) for s in rows["seed"].dropna())
    if not seeds:
        return None
    return 0 if 0 in seeds else seeds[0]


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


class _Figures:
    """Makes the figures of one model page, each guarded."""

    def __init__(self, ctx: Context, model: str) -> None:
        self.ctx = ctx
        self.model = model
        self.dir = ctx.out / "img" / slug(model)
        self.dir.mkdir(parents=True, exist_ok=True)

    def make(self, name: str, alt: str, fn: Callable[[], Any], caption: str = "") -> Figure:
        fig = Figure(alt=alt, caption=caption)
        t0 = time.perf_counter()
        try:
            result = fn()
        except plots.NoPlot as exc:
            fig.note = str(exc)
            return fig
        except Exception as exc:  # a plot that fails becomes a note, never a crash
            text = str(exc).strip()
            fig.error = f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"
            self.ctx.log(f"report: {self.model} {name} plot failed: {fig.error}")
            return fig
        notes: list[str] = []
        if isinstance(result, tuple):
            result, notes = result
        path = self.dir / f"{name}.png"
        try:
            plots.save(result, path)
        except Exception as exc:
            fig.error = f"saving failed: {type(exc).__name__}: {exc}"
            return fig
        fig.src = f"../img/{slug(self.model)}/{name}.png"
        fig.notes = list(notes)
        self.ctx.timings[f"{self.model}/{name}"] = time.perf_counter() - t0
        return fig


def _write_model_page(ctx: Context, model: str, spec) -> None:
    from reports import corner

    df = ctx.results.df
    has_rows = bool(len(df)) and bool((df["model"] == model).any())
    data_key = _data_key(ctx, model)
    figs = _Figures(ctx, model)
    methods = ctx.expected[model]
    summaries = [ctx.summaries[(model, m)] for m in methods]

    ds, ds_error = None, ""
    if spec is not None:
        try:
            ds = spec.data_for({"seed": None, **data_key})
        except Exception as exc:
            ds_error = f"{type(exc).__name__}: {exc}"

    # Draws: reference, NUTS and every ok guide at seed 0 (or the first ok seed).
    ref = _reference_for(ctx, model)
    chains: dict[str, dict[str, np.ndarray]] = {}  # name -> {site: (n, *shape)}
    shown, missing_notes = [], []
    nuts_raw: tuple[dict, dict] | None = None
    losses: dict[str, np.ndarray] = {}
    converged: dict[str, float] = {}
    if ref is not None:
        draws, why = loader.load_reference_draws(ref)
        if draws is not None:
            chains["reference"] = draws
        else:
            missing_notes.append(why)
    for method in methods:
        seed = _shown_seed(df, model, method) if has_rows else None
        if seed is None:
            continue
        draws, other, why = loader.load_run(ctx.results.results_dir, model, method, seed)
        if draws is None:
            missing_notes.append(f"{method}: {why}")
            continue
        shown.append(f"{method} seed {seed}")
        if method == "nuts":
            nuts_raw = (draws, other)
            chains["nuts"] = merge_draw_axes(draws, 2)
        else:
            chains[method] = draws
            if "losses" in other:
                losses[method] = other["losses"]
                converged[method] = _row_value(df, model, method, seed, "converged_step")
    colors = plots.colors_for(list(chains))
    notes_common = missing_notes

    data_fig = Figure(alt=f"{model} data")
    if spec is None:
        data_fig.note = "The model is not in the registry: its data cannot be drawn."
    elif ds is None:
        data_fig.error = f"could not make the data: {ds_error}"
    else:
        data_fig = figs.make("data", f"{model} data", lambda: plots.data_plot(spec, ds))

    predictive = spec is not None and spec.predictive_check is not None
    shapes_src = chains.get("reference") or chains.get("nuts") or next(iter(chains.values()), None)
    columns, vector_sites = ([], [])
    if shapes_src is not None:
        columns, vector_sites = corner.choose(corner.site_shapes(shapes_src))

    if predictive:
        corner_fig = Figure(alt=f"{model} corner plot", note=(
            "No corner plot: the weight-space posterior is multimodal (hidden-unit permutations "
            "and sign flips), so weights are not comparable across methods. The predictive plot "
            "below compares the methods where they are comparable."))
        scores = {}
        for s in summaries:
            v = s.value("pred_prob_mad")
            if np.isfinite(v):
                scores[s.method] = f"pred_prob_mad {fmt(v)}"
        pred_fig = figs.make(
            "predictive", f"{model} predictive probability",
            lambda: _predictive(spec, ds, chains, scores),
            caption="Posterior mean predicted probability of class 1 over the input plane, from "
                    "at most 200 stored draws per method (training points shown); the black line "
                    "is the 0.5 decision boundary.")
        interval_fig = None
    else:
        pred_fig = None
        truth = corner.truth_components(ds.true_values if ds is not None else None, columns)
        flat = {name: component_columns(draws) for name, draws in chains.items()}
        caption = ("ChainConsumer corner plot: reference (shaded), NUTS and every guide, "
                   f"{corner.MAX_DRAWS} draws at most per chain; dashed lines: true values "
                   "of the simulated data." if truth else
                   "ChainConsumer corner plot: reference (shaded), NUTS and every guide, "
                   f"{corner.MAX_DRAWS} draws at most per chain.")
        if vector_sites:
            caption += (" High-dimensional model: the corner shows the population-level "
                        "parameters; the per-group parameters are below as intervals.")
        corner_fig = figs.make(
            "corner", f"{model} corner plot",
            lambda: _corner(corner, flat, columns, colors, truth), caption=caption)
        corner_fig.notes = notes_common + corner_fig.notes
        interval_fig = None
        if vector_sites:
            true_vals = dict(ds.true_values or {}) if ds is not None else None
            interval_fig = figs.make(
                "intervals", f"{model} per-group intervals",
                lambda: plots.interval_plot(chains, vector_sites, colors, true_vals),
                caption="Mean ± sd of each component of the vector sites, per method "
                        "(crosses: true values).")

    loss_fig = figs.make("loss", f"{model} loss curves",
                         lambda: plots.loss_plot(losses, converged, colors),
                         caption="Loss of every ok guide (the shown seed), smoothed over 1% of the "
                                 "steps, on a log step axis; circles mark the converged step of "
                                 "the plateau rule (none: no plateau).")
    trace_fig, energy_fig = _nuts_figures(figs, model, nuts_raw, columns)

    entries = [_entry(s, "../") for s in summaries]
    html = ctx.env.get_template("model.html").render(
        title=model, root="../", nav=ctx.nav, model=model, spec=spec, has_rows=has_rows,
        data_key=json.dumps(data_key, sort_keys=True), latent_dim=_latent_dim(summaries),
        seeds_shown=", ".join(shown) or "none (no ok run)",
        figs={"data": data_fig, "corner": corner_fig, "intervals": interval_fig,
              "predictive": pred_fig, "loss": loss_fig, "trace": trace_fig,
              "energy": energy_fig},
        methods=[{"name": m, "href": "../" + method_href(m)} for m in methods],
        method_entries=entries, metric_rows=_metric_rows(summaries),
        ref=_reference_view(ref),
        ref_missing="No stored reference for this model and data in "
                    f"{ctx.results.results_dir.name}/references: metrics and verdicts are "
                    "missing or say so.")
    (ctx.out / model_href(model)).write_text(html)


def _latent_dim(summaries: list[Summary]) -> str:
    for s in summaries:
        v = s.value("latent_dim")
        if np.isfinite(v):
            return str(int(v))
    return ""


def _corner(corner, flat, columns, colors, truth):
    if not columns:
        raise plots.NoPlot("No draws to plot: no reference and no ok run.")
    return corner.corner_plot(flat, columns, colors, truth)


def _predictive(spec, ds, chains, scores):
    if ds is None:
        raise plots.NoPlot("The data could not be made: no predictive plot.")
    if not chains:
        raise plots.NoPlot("No draws to plot: no reference and no ok run.")
    return plots.predictive_plane_plot(spec, ds, chains, scores)


def _nuts_figures(figs: _Figures, model: str, nuts_raw, columns: list[str]
                  ) -> tuple[Figure, Figure]:
    from benchmarks.scoring import arviz_adapter

    if nuts_raw is None:
        none = "No ok NUTS run with a stored artifact: no trace or energy plot."
        return (Figure(alt=f"{model} NUTS trace", note=none),
                Figure(alt=f"{model} NUTS energy", note=""))
    draws, other = nuts_raw
    sites = []
    for c in columns:
        site = c.split("[", 1)[0]
        if site in draws and site not in sites:
            sites.append(site)
    if not sites:
        sites = sorted(draws)[:3]
    sites = sites[:6]
    diverging = other.get("diverging")
    trace = figs.make(
        "trace", f"{model} NUTS trace",
        lambda: arviz_adapter.plot_trace({s: draws[s] for s in sites}, diverging=diverging),
        caption="ArviZ trace plot of NUTS (shown seed): per-chain densities and traces of "
                f"{', '.join(sites)}; vector sites drawn one line per component; bars at the "
                "bottom mark divergent transitions.")
    if "energy" in other:
        energy = figs.make("energy", f"{model} NUTS energy",
                           lambda: arviz_adapter.plot_energy(other["energy"]),
                           caption="ArviZ energy plot: marginal energy against energy transitions "
                                   "(similar widths: good exploration; E-BFMI per chain).")
    else:
        energy = Figure(alt=f"{model} NUTS energy", note="The NUTS artifact has no energy array.")
    return trace, energy
