"""The figures of a model page, each made under guard: the data, the posterior (corner plot and
per-group intervals, or the predictive plane of a model judged in predictive space), the loss
curves and a sampler's trace and energy. A plot that fails becomes a note on the page, never a crash.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring.draws import component_columns
from svi_bench.reports import corner, plots
from svi_bench.reports.context import Context, entry
from svi_bench.reports.loader import slug
from svi_bench.reports.tables import Summary, fmt


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
class Draws:
    """The draws a model page shows: the reference and every ok method at one seed."""

    chains: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # {site: (n, *shape)}
    shown: list[str] = field(default_factory=list)  # "<method> seed <k>"
    notes: list[str] = field(default_factory=list)  # draws that could not be loaded, and why
    sampler: tuple[str, dict, dict] | None = None  # (method, (chain, draw) draws, other arrays)
    losses: dict[str, np.ndarray] = field(default_factory=dict)
    converged: dict[str, float] = field(default_factory=dict)
    colors: dict[str, str] = field(default_factory=dict)


class FigureMaker:
    """Makes the figures of one model page, each guarded, into img/<model>/."""

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


# --- data ---------------------------------------------------------------------------------------


def data_figure(figs: FigureMaker, model: str, spec, ds, ds_error: str) -> Figure:
    fig = Figure(alt=f"{model} data")
    if spec is None:
        fig.note = "The model is not in the registry: its data cannot be drawn."
    elif ds is None:
        fig.error = f"could not make the data: {ds_error}"
    else:
        fig = figs.make("data", f"{model} data", lambda: plots.data_plot(spec, ds))
    return fig


# --- posterior: corner and intervals, or the predictive plane ------------------------------------


def posterior_figures(figs: FigureMaker, model: str, spec, ds, draws: Draws,
                      summaries: list[Summary]) -> tuple[dict[str, Any], list[str]]:
    """({"corner", "intervals", "predictive"} figures and "multiples" (the per-method corners,
    ``method_corners``, or None), the corner's component columns)."""
    chains, baseline = draws.chains, figs.ctx.baseline
    shapes_src = (chains.get("reference") or (chains.get(baseline) if baseline else None)
                  or next(iter(chains.values()), None))
    columns, vector_sites = ([], [])
    if shapes_src is not None:
        columns, vector_sites = corner.choose(corner.site_shapes(shapes_src))
    if spec is not None and spec.predictive_check is not None:
        return _predictive_figures(figs, model, spec, ds, chains, summaries), columns
    return _corner_figures(figs, model, ds, draws, columns, vector_sites, summaries), columns


def _predictive_figures(figs: FigureMaker, model: str, spec, ds, chains, summaries
                        ) -> dict[str, Figure | None]:
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
    return {"corner": corner_fig, "intervals": None, "predictive": pred_fig, "multiples": None}


def _corner_figures(figs: FigureMaker, model: str, ds, draws: Draws, columns: list[str],
                    vector_sites: list[str], summaries: list[Summary]) -> dict[str, Any]:
    chains, colors = draws.chains, draws.colors
    truth = corner.truth_components(ds.true_values if ds is not None else None, columns)
    flat = {name: component_columns(d) for name, d in chains.items()}
    try:  # thinned once, for the combined corner and every per-method one
        frames, left_out = corner.prepare(flat, columns) if columns else ({}, [])
    except Exception as exc:  # bad draws become a note, never a crash
        frames, left_out = {}, [f"corner draws unusable: {type(exc).__name__}: {exc}"]
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
        lambda: _corner(frames, columns, colors, truth, figs.ctx.baseline), caption=caption)
    corner_fig.notes = draws.notes + left_out + corner_fig.notes
    multiples = method_corners(figs, model, frames, columns, colors, truth, summaries,
                               draws.notes + left_out) if columns else None
    interval_fig = None
    if vector_sites:
        true_vals = dict(ds.true_values or {}) if ds is not None else None
        interval_fig = figs.make(
            "intervals", f"{model} per-group intervals",
            lambda: plots.interval_plot(chains, vector_sites, colors, true_vals),
            caption="Mean ± sd of each component of the vector sites, per method "
                    "(crosses: true values).")
    return {"corner": corner_fig, "intervals": interval_fig, "predictive": None,
            "multiples": multiples}


def _corner(frames, columns, colors, truth, baseline: str | None):
    if not columns:
        raise plots.NoPlot("No draws to plot: no reference and no ok run.")
    if not frames:
        raise plots.NoPlot("No chain with usable draws for a corner plot.")
    return corner.plot_frames(frames, columns, colors, truth, fallback=baseline)


def method_corners(figs: FigureMaker, model: str, frames, columns: list[str], colors, truth,
                   summaries: list[Summary], why: list[str]) -> dict[str, Any]:
    """The small multiples: one corner per method (leaderboard order) against the reference,
    from the combined corner's thinned ``frames``, or a one-line note for a method without
    draws (``why``: the "<method>: reason" lines of draws not loaded or left out)."""
    grid = "cols-3" if len(columns) <= 3 else "cols-2"
    if "reference" not in frames:
        return {"grid": grid, "items": [], "note": (
            "No per-method corners: there are no usable reference draws to compare against.")}
    items = []
    for s in summaries:
        item: dict[str, Any] = {"e": entry(figs.ctx, s, "../"), "fig": None, "note": ""}
        if s.method in frames:
            item["fig"] = figs.make(
                f"corner-{slug(s.method)}", f"{model}: {s.method} against the reference",
                lambda m=s.method: corner.method_corner(frames, m, columns, colors, truth))
        else:
            item["note"] = _no_draws(s, why)
        items.append(item)
    return {"grid": grid, "items": items, "note": ""}


def _no_draws(s: Summary, why: list[str]) -> str:
    """One line: why a method has no corner of its own."""
    if s.status in ("missing", "failed", "not_applicable"):
        reason = (s.reason or "").strip().splitlines()
        text = reason[0] if reason else ""
        return "no draws" + (f": {text[:200]}" if text else "")
    own = [w.split(": ", 1)[1] for w in why if w.startswith(f"{s.method}: ")]
    return "no usable draws: " + (own[0] if own else "no stored artifact of an ok run")


def _predictive(spec, ds, chains, scores):
    if ds is None:
        raise plots.NoPlot("The data could not be made: no predictive plot.")
    if not chains:
        raise plots.NoPlot("No draws to plot: no reference and no ok run.")
    return plots.predictive_plane_plot(spec, ds, chains, scores)


# --- loss curves and a sampler's diagnostics ------------------------------------------------------


def loss_figure(figs: FigureMaker, model: str, draws: Draws) -> Figure:
    return figs.make("loss", f"{model} loss curves",
                     lambda: plots.loss_plot(draws.losses, draws.converged, draws.colors),
                     caption="Loss of every ok guide (the shown seed), smoothed over 1% of the "
                             "steps, on a log step axis; circles mark the converged step of "
                             "the plateau rule (none: no plateau).")


def sampler_figures(figs: FigureMaker, model: str, sampler: tuple[str, dict, dict] | None,
                    columns: list[str], label: str) -> tuple[Figure, Figure]:
    """(trace, energy) of the shown sampler run (``Draws.sampler``), on the sites of the corner's
    columns; ``label`` names the sampler in the alt texts and captions ("NUTS")."""
    from svi_bench.benchmarks.scoring import arviz_adapter

    if sampler is None:
        none = f"No ok {label} run with a stored artifact: no trace or energy plot."
        return (Figure(alt=f"{model} {label} trace", note=none),
                Figure(alt=f"{model} {label} energy", note=""))
    _, draws, other = sampler
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
        "trace", f"{model} {label} trace",
        lambda: arviz_adapter.plot_trace({s: draws[s] for s in sites}, diverging=diverging),
        caption=f"ArviZ trace plot of {label} (shown seed): per-chain densities and traces of "
                f"{', '.join(sites)}; vector sites drawn one line per component; bars at the "
                "bottom mark divergent transitions.")
    if "energy" in other:
        energy = figs.make("energy", f"{model} {label} energy",
                           lambda: arviz_adapter.plot_energy(other["energy"]),
                           caption="ArviZ energy plot: marginal energy against energy transitions "
                                   "(similar widths: good exploration; E-BFMI per chain).")
    else:
        energy = Figure(alt=f"{model} {label} energy",
                        note=f"The {label} artifact has no energy array.")
    return trace, energy
