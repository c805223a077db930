"""Matplotlib plots of the report (Agg backend, small PNGs): data, loss curves, intervals, bnn.

Every function returns a matplotlib Figure (the caller saves and closes it) or raises; the
builder turns an exception into a visible "plot failed: reason" note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from svi_bench.benchmarks.scoring.draws import component_names  # noqa: E402
from svi_bench.models import Dataset, ModelSpec  # noqa: E402

DPI = 80
REFERENCE_COLOR = "#444444"
BASELINE_COLOR = "#1f77b4"
_GUIDE_COLORS = ("#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
                 "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a")


class NoPlot(Exception):
    """Nothing to plot (not an error): the message is shown instead of an image."""


def colors_for(names: Sequence[str], baseline: str | None = None) -> dict[str, str]:
    """A fixed colour per chain name: reference grey, the baseline method (``Manifest.baseline``)
    blue, the others in order."""
    out: dict[str, str] = {}
    i = 0
    for name in names:
        if name == "reference":
            out[name] = REFERENCE_COLOR
        elif name == baseline:
            out[name] = BASELINE_COLOR
        else:
            out[name] = _GUIDE_COLORS[i % len(_GUIDE_COLORS)]
            i += 1
    return out


# --- data plots ---------------------------------------------------------------------------------


def data_plot(spec: ModelSpec, ds: Dataset):
    """A plot of the model's data: the model's own ``data_plot`` if it has one, else histograms
    of its array arguments, or NoPlot saying why there is none."""
    fig = spec.data_plot(ds) if spec.data_plot is not None else _generic_data(spec, ds)
    fig.tight_layout()
    return fig


def _generic_data(spec, ds):
    arrays = {}
    for key, value in ds.model_kwargs.items():
        if isinstance(value, (int, float, str, bool)) or value is None:
            continue
        arr = np.asarray(value)
        if arr.dtype.kind in "fiub" and arr.size > 1:
            arrays[key] = arr.astype(float).ravel()
    if not arrays:
        raise NoPlot("This model has no data: its target is a fixed density.")
    arrays = dict(list(arrays.items())[:3])
    fig, axes = plt.subplots(1, len(arrays), figsize=(3.2 * len(arrays), 2.6), squeeze=False)
    for ax, (key, arr) in zip(axes[0], arrays.items(), strict=True):
        ax.hist(arr, bins=min(30, max(5, arr.size // 5)), color="#9ecae1", edgecolor="white")
        ax.set_title(f"{key} ({arr.size} values)", fontsize=9)
    fig.tight_layout()
    return fig


# --- loss curves --------------------------------------------------------------------------------


def loss_plot(curves: Mapping[str, np.ndarray], converged: Mapping[str, float],
              colors: Mapping[str, str]):
    """Every guide's loss trace on one plot (log step axis), smoothed, converged step marked."""
    if not curves:
        raise NoPlot("No SVI loss trace to show.")
    fig, ax = plt.subplots(figsize=(7.6, 3.4))
    lows, highs = [], []
    for name, losses in curves.items():
        losses = np.asarray(losses, dtype=float)
        n = losses.size
        if n == 0:
            continue
        window = max(1, n // 50)
        series = pd.Series(np.where(np.isfinite(losses), losses, np.nan))
        smooth = series.rolling(window, min_periods=1, center=True).mean().to_numpy()
        steps = np.arange(1, n + 1)
        color = colors.get(name)
        ax.plot(steps, smooth, lw=1.1, color=color, label=name)
        tail = smooth[n // 10:]
        tail = tail[np.isfinite(tail)]
        if tail.size:
            lows.append(np.min(tail))
            highs.append(np.percentile(tail, 90))
        step = converged.get(name, math.nan)
        if step is not None and np.isfinite(step):
            i = int(min(max(step, 1), n)) - 1
            if np.isfinite(smooth[i]):
                ax.plot([i + 1], [smooth[i]], "o", ms=6, mfc="white", mec=color, mew=1.5)
    ax.set_xscale("log")
    if lows:
        lo, hi = min(lows), max(highs)
        pad = 0.15 * (hi - lo) if hi > lo else max(1.0, abs(lo) * 0.05)
        ax.set_ylim(lo - pad, hi + 3 * pad)
    ax.set_xlabel("step")
    ax.set_ylabel("loss (−ELBO estimate), smoothed")
    ax.plot([], [], "o", ms=6, mfc="white", mec="k", label="converged step")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# --- per-group intervals ------------------------------------------------------------------------


def interval_plot(series: Mapping[str, Mapping[str, np.ndarray]], sites: Sequence[str],
                  colors: Mapping[str, str], truth: Mapping[str, np.ndarray] | None = None):
    """Mean ± sd per component of vector sites, one errorbar series per chain (like the
    document's "Gradients / Offsets" figure). ``series``: name -> {site: (n, k) draws}."""
    if not sites:
        raise NoPlot("No vector site to show.")
    fig, axes = plt.subplots(len(sites), 1, figsize=(8.4, max(3.0, 2.3 * len(sites))),
                             squeeze=False)
    names = [n for n in series if any(s in series[n] for s in sites)]
    width = 0.7
    for ax, site in zip(axes[:, 0], sites, strict=True):
        k, labels = None, []
        for j, name in enumerate(names):
            draws = series[name].get(site)
            if draws is None:
                continue
            labels = component_names(site, np.shape(draws)[1:])
            draws = np.asarray(draws, dtype=float).reshape(len(draws), -1)
            k = draws.shape[1]
            offset = (j - (len(names) - 1) / 2) * width / max(1, len(names))
            idx = np.arange(k) + offset
            ax.errorbar(idx, draws.mean(0), yerr=draws.std(0), fmt="o", ms=3, capsize=2,
                        lw=1, color=colors.get(name), label=name)
        if truth is not None and site in truth and k is not None:
            t = np.asarray(truth[site], dtype=float).ravel()
            if t.size == k:
                ax.plot(np.arange(k), t, "kx", ms=6, label="true value")
        if k is not None:
            ax.set_xticks(np.arange(k))
            ax.set_xticklabels(labels, fontsize=7,
                               rotation=45 if k > 10 else 0)
        ax.set_ylabel(f"{site} (mean ± sd)", fontsize=8)
    axes[0, 0].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    return fig


# --- predictive plot (bnn) ----------------------------------------------------------------------


def predictive_plane_plot(spec: ModelSpec, ds: Dataset, draws_by_name: Mapping[str, dict],
                          scores: Mapping[str, str], max_draws: int = 200, grid_points: int = 40):
    """Posterior mean predicted probability of class 1 over the 2-D input plane, one panel per
    chain, from stored draws through the model's ``draw_probs`` (array math, no inference).
    """
    if spec.draw_probs is None:
        raise NoPlot("The model has no draw_probs function for a predictive plot.")
    x = np.asarray(ds.model_kwargs["x"], dtype=float)
    y = np.asarray(ds.model_kwargs["y"], dtype=float)
    if x.ndim != 2 or x.shape[1] != 2:
        raise NoPlot("The inputs are not two-dimensional: no predictive plane plot.")
    pad = 0.3
    g1 = np.linspace(x[:, 0].min() - pad, x[:, 0].max() + pad, grid_points)
    g2 = np.linspace(x[:, 1].min() - pad, x[:, 1].max() + pad, grid_points)
    mesh = np.stack(np.meshgrid(g1, g2), axis=-1).reshape(-1, 2).astype(np.float32)
    plane = Dataset(model_kwargs=ds.model_kwargs,
                    extras={"x_test": mesh, "y_test": np.zeros(len(mesh), np.float32)})
    names = list(draws_by_name)
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.2 * rows), squeeze=False,
                             sharex=True, sharey=True)
    rng = np.random.default_rng(0)
    mappable = None
    for ax, name in zip(axes.ravel(), names, strict=False):
        draws = draws_by_name[name]
        n = len(next(iter(draws.values())))
        take = np.sort(rng.choice(n, size=min(n, max_draws), replace=False))
        probs = spec.draw_probs({k: np.asarray(v)[take] for k, v in draws.items()}, plane, "test")
        p = probs.mean(axis=0).reshape(grid_points, grid_points)
        mappable = ax.contourf(g1, g2, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.8)
        ax.contour(g1, g2, p, levels=[0.5], colors="k", linewidths=0.8)
        ax.scatter(x[:, 0], x[:, 1], c=np.where(y > 0.5, "#d62728", "#1f77b4"), s=3, lw=0)
        title = name if not scores.get(name) else f"{name}\n{scores[name]}"
        ax.set_title(title, fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.tight_layout()
    if mappable is not None:
        fig.colorbar(mappable, ax=axes.ravel().tolist(), shrink=0.8, fraction=0.03, pad=0.02,
                     label="P(class 1)")
    return fig


def save(fig, path, dpi: int = DPI) -> None:
    """Save ``fig`` as PNG and close it."""
    try:
        fig.savefig(path, dpi=dpi, bbox_inches="tight", pad_inches=0.1)
    finally:
        plt.close(fig)
