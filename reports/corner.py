"""Corner plots with ChainConsumer 1.x: the reference and every method overlaid, and one corner
per method against the reference (the model page's small multiples), all from one thinning.

ChainConsumer notes: ``Chain.from_numpyro`` fails on vector sites and extra DataFrame columns are
plotted as parameters, so each chain is a DataFrame of exactly the chosen scalar components; the
default summary statistic is ``max``, so ``statistics="mean"`` is passed; draws are subsampled.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from svi_bench.benchmarks.scoring.draws import component_columns, component_names
from svi_bench.reports.plots import NoPlot

MAX_CORNER = 8  # scalar components beyond which only population-level parameters are shown
MAX_DRAWS = 2000

logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)


def site_shapes(draws: Mapping[str, np.ndarray], leading: int = 1) -> dict[str, tuple[int, ...]]:
    return {k: tuple(np.shape(v)[leading:]) for k, v in draws.items()}


def choose(shapes: Mapping[str, tuple[int, ...]]) -> tuple[list[str], list[str]]:
    """(corner columns, vector sites for the interval plot).

    Up to MAX_CORNER scalar components: all of them in the corner. Beyond: the scalar sites
    (population-level parameters) in the corner and the vector sites as intervals; with no scalar
    site, the first four components of the first site.
    """
    names = [name for site in sorted(shapes) for name in component_names(site, shapes[site])]
    if len(names) <= MAX_CORNER:
        return names, []
    scalars = [s for s in sorted(shapes) if not shapes[s]][:MAX_CORNER]
    vectors = [s for s in sorted(shapes) if shapes[s]]
    if not scalars:
        scalars = names[:4]
    return scalars, vectors


def truth_components(true_values: Mapping[str, np.ndarray] | None, columns: Sequence[str]
                     ) -> dict[str, float]:
    if not true_values:
        return {}
    flat = component_columns({k: np.asarray(v)[None] for k, v in true_values.items()})
    return {c: float(flat[c][0]) for c in columns if c in flat and np.isfinite(flat[c][0])}


def subsample(values: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    if len(values) <= n:
        return values
    idx = np.sort(np.random.default_rng(seed).choice(len(values), size=n, replace=False))
    return values[idx]


def prepare(chains: Mapping[str, Mapping[str, np.ndarray]], columns: Sequence[str]
            ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """(name -> DataFrame of at most MAX_DRAWS thinned draws of ``columns``, notes). Chains
    lacking a column or with non-finite or constant draws are left out with a note. The combined
    corner and every per-method corner plot these same frames (thinned once)."""
    notes: list[str] = []
    frames: dict[str, pd.DataFrame] = {}
    for name, comps in chains.items():
        missing = [c for c in columns if c not in comps]
        if missing:
            notes.append(f"{name}: left out, no draws of {', '.join(missing[:3])}")
            continue
        n = min(len(comps[c]) for c in columns)
        idx = subsample(np.arange(n), MAX_DRAWS)
        frame = pd.DataFrame({c: np.asarray(comps[c], dtype=float)[idx] for c in columns})
        values = frame.to_numpy()
        if not np.all(np.isfinite(values)):
            notes.append(f"{name}: left out, non-finite draws")
            continue
        if len(frame) < 3 or np.any(values.std(axis=0) == 0):
            notes.append(f"{name}: left out, constant or too few draws")
            continue
        frames[name] = frame
    return frames, notes


def corner_plot(chains: Mapping[str, Mapping[str, np.ndarray]], columns: Sequence[str],
                colors: Mapping[str, str], truth: Mapping[str, float] | None = None,
                extents_from: str | None = "reference") -> tuple[object, list[str]]:
    """(figure, notes). ``chains``: name -> {component: 1-D draws}; see ``prepare`` and
    ``plot_frames``."""
    frames, notes = prepare(chains, columns)
    fig, more = plot_frames(frames, columns, colors, truth, extents_from)
    return fig, notes + more


def small_multiple_width(n_columns: int) -> float:
    """Width in inches (at 80 dpi) of one per-method corner: three to a row of a 1400 px page
    for up to three components, two to a row beyond, so that no image is scaled down."""
    return 5.2 if n_columns <= 3 else 8.0


def method_corner(frames: Mapping[str, pd.DataFrame], method: str, columns: Sequence[str],
                  colors: Mapping[str, str], truth: Mapping[str, float] | None = None
                  ) -> tuple[object, list[str]]:
    """(figure, notes): one method's thinned draws against the reference's (shaded), on the
    axes of the combined corner (they follow the reference)."""
    if method not in frames:
        raise NoPlot(f"{method}: no usable draws.")
    pair = {k: frames[k] for k in ("reference", method) if k in frames}
    width = 4.8 if len(columns) == 1 else small_multiple_width(len(columns))  # + legend beside
    return plot_frames(pair, columns, colors, truth, "reference", width=width)


def plot_frames(frames: Mapping[str, pd.DataFrame], columns: Sequence[str],
                colors: Mapping[str, str], truth: Mapping[str, float] | None = None,
                extents_from: str | None = "reference", width: float | None = None,
                fallback: str | None = None) -> tuple[object, list[str]]:
    """(figure, notes) of prepared frames; axis ranges follow ``extents_from`` (the reference),
    or ``fallback`` (the baseline method) without it, and chains reaching outside them are named
    in the notes. ``width``: figure width in inches (default: grows with the number of
    columns)."""
    from chainconsumer import Chain, ChainConsumer, PlotConfig, Truth

    notes: list[str] = []
    if not frames:
        raise NoPlot("No chain with usable draws for a corner plot.")
    cc = ChainConsumer()
    for name, frame in frames.items():
        is_ref = name == "reference"
        bins = int(np.clip(1.6 * len(frame) ** (1 / 3), 8, 30))  # coarse enough for few draws
        cc.add_chain(Chain(samples=frame, name=name, statistics="mean", color=colors.get(name),
                           shade=is_ref, shade_alpha=0.35, linewidth=1.6 if is_ref else 1.0,
                           plot_point=False, bar_shade=is_ref, bins=bins))
    extents = {}
    base = frames.get(extents_from) if extents_from else None
    if base is None and frames and fallback:
        base = frames.get(fallback)
    if base is not None and len(frames) > 1:
        outside = []
        for c in columns:
            lo, hi = np.percentile(base[c], [0.5, 99.5])
            pad = 0.3 * (hi - lo) if hi > lo else 1.0
            extents[c] = (float(lo - pad), float(hi + pad))
        for name, frame in frames.items():
            means = frame.mean()
            if any(not extents[c][0] <= means[c] <= extents[c][1] for c in columns):
                outside.append(name)
        if outside:
            notes.append("mean outside the plotted range (axes follow the reference): "
                         + ", ".join(outside))
    if truth:
        cc.add_truth(Truth(location=dict(truth), color="black", line_style="--"))
    legend = {"fontsize": 8}
    if len(columns) == 1:  # one panel: the legend goes beside it, not over the density
        figsize = (width or 6.0, 3.2)
        legend.update(loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        size = width or min(1.4 * len(columns) + 1.6, 9.0)
        figsize = (size, size)
    cc.set_plot_config(PlotConfig(dpi=80, summarise=False, extents=extents, max_ticks=4,
                                  label_font_size=9, tick_font_size=7, usetex=False, serif=False,
                                  legend_kwargs=legend))
    fig = cc.plotter.plot(columns=list(columns), figsize=figsize)
    return fig, notes
