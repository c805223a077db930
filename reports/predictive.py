"""The model page's "Posterior predictive check" section (001, "Mock Observations").

Reads only stored files: each shown run's replicated data (its artifact's ``posterior_predictive``
group) and the reference's (``predictive/`` in the results folder, written at scoring time by
``benchmarks.scoring.predictive``), plus the ``ppc_w1`` columns. One panel per method: the
reference's replicated data against the method's over the observed data, either per data point
against a 1-D covariate of the data (``x``) or, without one, as the distribution of all replicated
values against the observed ones (category frequencies for discrete data, as the document's coin
histogram). Rows stored before these checks existed are said to lack them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring import predictive as scoring
from svi_bench.reports import plots
from svi_bench.reports.tables import fmt

MARKER = "<h2>SVI loss curves</h2>"
RATIO_FLAG = 2.0
"""A method whose ppc_w1 exceeds this multiple of its floor is named in the section's sentence."""

SECTION = """{% import "macros.html" as mac %}
<h2 id="ppc">Posterior predictive check</h2>
<p class="small muted">Replicated data (001, "Mock Observations"): the model run forward on at
most {{ n }} posterior draws of each method and of the reference, with every observed site
released. <code>ppc_w1</code>: per observed data point, the 1-Wasserstein distance between the
method's and the reference's replicated values over the reference's predictive sd there, averaged
over points; the floor (in parentheses) is the same number for exact posterior draws. A
diagnostic, not part of the verdict.</p>
{% for n in notes %}<div class="note">{{ n }}</div>{% endfor %}
{% if sentence %}<p>{{ sentence }}</p>{% endif %}
{{ mac.figure(fig) }}
{% if rows %}<div class="scroll"><table class="ppc">
<thead><tr><th>method</th><th>ppc_w1 (floor)</th><th>ratio to floor</th><th>seeds</th>
<th>note</th></tr></thead><tbody>
{% for r in rows %}<tr data-method="{{ r.method }}"><th>{{ r.method }}</th>
<td class="num" title="{{ r.title }}">{{ r.value }} <span class="floor small">({{ r.floor }})</span></td>
<td class="num">{{ r.ratio }}</td><td class="num">{{ r.seeds }}</td>
<td class="small">{{ r.note }}</td></tr>
{% endfor %}</tbody></table></div>{% endif %}
"""


def insert(html: str, section: str) -> str:
    """The page with the section placed before its loss curves (or at the end of its content)."""
    if MARKER in html:
        return html.replace(MARKER, section + "\n" + MARKER, 1)
    return html.replace("</main>", section + "\n</main>", 1)


def page_section(ctx, model: str, methods: list[str], summaries, ref, ds, figs, run_row) -> str:
    """``section``, or a note saying why it could not be made: never a crash of the page."""
    try:
        return section(ctx, model, methods, summaries, ref, ds, figs, run_row)
    except Exception as exc:
        ctx.log(f"report: {model} posterior predictive section failed: {exc!r}")
        text = str(exc).strip().splitlines()
        reason = f"{type(exc).__name__}: {text[0] if text else ''}"
        return ctx.env.from_string('<h2 id="ppc">Posterior predictive check</h2>\n'
                                   '<div class="plot-failed">section failed: {{ r }}</div>'
                                   ).render(r=reason)


def section(ctx, model: str, methods: list[str], summaries, ref, ds, figs, run_row) -> str:
    """The section's HTML. ``run_row(method)`` is the results row shown for a method (or None);
    ``ref`` the stored reference (or None); ``figs`` the page's ``FigureMaker``."""
    notes: list[str] = []
    reference = _reference_replicates(ctx.results.results_dir, ref, notes)
    runs: dict[str, tuple[dict, dict]] = {}
    for method in methods:
        row = run_row(method)
        if row is None:
            continue
        loaded, why = _run_replicates(ctx.results.results_dir, row)
        if loaded is None:
            notes.append(f"{method}: {why}")
        else:
            runs[method] = loaded
    rows = table_rows(ctx.results.df, model, summaries)
    if reference is None or not runs:
        why = ("no method's run has stored replicated data" if reference is not None else
               "the reference has no stored replicated data")
        fig = figs.make("ppc", f"{model} posterior predictive check", lambda: _no_plot(why))
    else:
        scores = {s.method: _score_text(s) for s in summaries}
        fig = figs.make("ppc", f"{model} posterior predictive check",
                        lambda: ppc_plot(reference, runs, ds, scores, ctx.baseline),
                        caption="Each method's run at the seed this page shows. "
                                "Grey: the reference's replicated data; colour: the method's; "
                                "black: the observed data. Against a covariate: 90% (thin) and "
                                "50% (thick) intervals of each point's replicated values; "
                                "without one: the distribution of all replicated values "
                                "(dashed: the observed).")
    template = ctx.env.from_string(SECTION)
    return template.render(n=scoring.N_REPLICATES, notes=notes, fig=fig, rows=rows,
                           sentence=sentence(rows))


def _no_plot(why: str):
    raise plots.NoPlot(f"No posterior predictive plot: {why} (results scored before posterior "
                       "predictive checks existed, or the model has nothing to replicate; see "
                       "the notes in the table).")


def _reference_replicates(results_dir: Path, ref, notes: list[str]):
    if ref is None:
        notes.append("No stored reference: nothing to compare replicated data with.")
        return None
    path = Path(results_dir) / scoring.reference_file(ref.provenance)
    if not path.is_file():
        notes.append(f"The reference's replicated data ({path.name}) are not stored in this "
                     "results folder: its rows were scored before posterior predictive checks, "
                     "or the model has nothing to replicate.")
        return None
    try:
        return arviz_adapter.load_predictive(path)
    except Exception as exc:
        notes.append(f"The reference's replicated data are unreadable ({type(exc).__name__}).")
        return None


def _run_replicates(results_dir: Path, row: dict) -> tuple[tuple[dict, dict] | None, str]:
    rel = row.get("artifact")
    if not isinstance(rel, str) or not rel:
        return None, "no artifact stored"
    path = Path(results_dir) / rel
    if not path.is_file():
        return None, f"artifact {path.name} is missing"
    try:
        loaded = arviz_adapter.load_predictive(path)
    except Exception as exc:
        return None, f"artifact {path.name} is unreadable ({type(exc).__name__})"
    if loaded is None:
        note = row.get("ppc_note")
        return None, (str(note) if isinstance(note, str) and note else
                      "the run was stored without replicated data (scored before posterior "
                      "predictive checks existed)")
    return loaded, ""


def _score_text(s) -> str:
    v, f = s.value("ppc_w1"), s.value("ppc_w1_floor")
    if not np.isfinite(v):
        return ""
    return f"ppc_w1 {fmt(v)} (floor {fmt(f)})" if np.isfinite(f) else f"ppc_w1 {fmt(v)}"


def table_rows(df, model: str, summaries) -> list[dict[str, Any]]:
    """One row per method: the median ppc_w1 over ok seeds, its floor, their ratio and the note."""
    out = []
    for s in summaries:
        if not s.n_seeds:
            continue
        v, f = s.value("ppc_w1"), s.value("ppc_w1_floor")
        lo, hi = s.spread.get("ppc_w1", (math.nan, math.nan))
        note = ""
        if "ppc_note" in df.columns:
            notes = df.loc[(df["model"] == model) & (df["method"] == s.method)
                           & (df["status"] == "ok"), "ppc_note"].dropna()
            note = next((str(n) for n in notes if str(n)), "")
            if not len(notes) and s.n_ok:
                note = "stored without predictive-check columns (scored before they existed)"
        elif s.n_ok:
            note = "stored without predictive-check columns (scored before they existed)"
        if not s.n_ok and not note:
            note = "no ok run"
        ratio = v / f if np.isfinite(v) and np.isfinite(f) and f > 0 else math.nan
        title = f"{s.method}: median {fmt(v)}"
        if np.isfinite(lo) and lo != hi:
            title += f", range {fmt(lo)} … {fmt(hi)}"
        out.append({"method": s.method, "value": fmt(v), "floor": fmt(f),
                    "ratio": fmt(ratio) if np.isfinite(ratio) else "–", "ratio_num": ratio,
                    "seeds": s.n_ok, "note": note, "title": title})
    return out


def sentence(rows: list[dict[str, Any]]) -> str:
    """Which methods' replicated data differ from the reference's beyond twice the floor."""
    scored = [r for r in rows if np.isfinite(r["ratio_num"])]
    if not scored:
        return ""
    off = [f"{r['method']} ({r['value']}, {fmt(r['ratio_num'])}x its floor)"
           for r in scored if r["ratio_num"] > RATIO_FLAG]
    if not off:
        return (f"All {len(scored)} scored methods replicate the data like the reference: "
                f"ppc_w1 within {RATIO_FLAG:g}x its noise floor.")
    return (f"{len(off)} of {len(scored)} scored methods replicate data unlike the reference "
            f"(ppc_w1 above {RATIO_FLAG:g}x its noise floor): {', '.join(off)}.")


# --- the figure -----------------------------------------------------------------------------------


def covariate(ds, observed: np.ndarray) -> tuple[str, np.ndarray] | None:
    """A 1-D numeric model argument as long as the observations (``x`` first), to plot against."""
    if ds is None or observed.ndim != 1:
        return None
    names = sorted(ds.model_kwargs, key=lambda k: (k.lower() != "x", k))
    for name in names:
        try:
            value = np.asarray(ds.model_kwargs[name], dtype=float)
        except (TypeError, ValueError):
            continue
        if (value.shape == observed.shape and len(np.unique(value)) > 2
                and not np.allclose(value, observed)):
            return name, value
    return None


def ppc_plot(reference: tuple[dict, dict], runs: dict[str, tuple[dict, dict]], ds,
             scores: dict[str, str], baseline: str | None = None):
    """One panel per method: reference vs method replicated data over the observed data (first
    observed site), in the model page's colours (``baseline``: ``plots.colors_for``)."""
    import matplotlib.pyplot as plt

    ref_reps, observed = reference
    site = sorted(ref_reps)[0]
    obs = np.asarray(observed.get(site, np.full(ref_reps[site].shape[1:], np.nan)), dtype=float)
    names = list(runs)
    colors = plots.colors_for(["reference", *names], baseline)
    cols = min(4, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.9 * cols, 3.0 * nrows), squeeze=False,
                             sharex=True, sharey=True)
    cov = covariate(ds, obs)
    ref = np.asarray(ref_reps[site], dtype=float)
    discrete = bool(np.all(np.isfinite(ref)) and np.all(ref == np.round(ref))
                    and len(np.unique(ref)) <= 20)
    for ax, name in zip(axes.ravel(), names, strict=False):
        reps = np.asarray(runs[name][0].get(site, np.empty((0,))), dtype=float)
        if reps.shape[1:] != ref.shape[1:]:
            ax.text(0.5, 0.5, f"{name}: replicated {site} has another shape", ha="center",
                    fontsize=8, transform=ax.transAxes)
        elif cov is not None and not discrete:
            _per_point(ax, cov[1], ref, reps, obs, colors[name])
            ax.set_xlabel(cov[0], fontsize=9)
        else:
            _pooled(ax, ref, reps, obs, colors[name], discrete)
            ax.set_xlabel(site, fontsize=9)
        title = name if not scores.get(name) else f"{name}\n{scores[name]}"
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=8, labelbottom=True)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(f"replicated {site}" + (f" (first of {len(ref_reps)} observed sites)"
                                          if len(ref_reps) > 1 else ""), fontsize=10)
    fig.tight_layout()
    return fig


def _per_point(ax, x, ref, reps, obs, color) -> None:
    order = np.argsort(x)
    x = x[order]
    shift = 0.008 * (np.ptp(x) or 1.0)
    for data, dx, c, lw in ((ref[:, order], -shift, plots.REFERENCE_COLOR, 1.6),
                            (reps[:, order], shift, color, 1.0)):
        q5, q25, q75, q95 = np.quantile(data, [0.05, 0.25, 0.75, 0.95], axis=0)
        ax.vlines(x + dx, q5, q95, color=c, lw=lw * 0.6, alpha=0.7)
        ax.vlines(x + dx, q25, q75, color=c, lw=lw * 2.2, alpha=0.7)
    ax.plot(x, obs[order], "o", color="k", ms=2.5, zorder=5)


def _pooled(ax, ref, reps, obs, color, discrete: bool) -> None:
    values = np.concatenate([ref.ravel(), reps.ravel(), obs.ravel()])
    values = values[np.isfinite(values)]
    if discrete:
        edges = np.arange(values.min() - 0.5, values.max() + 1.5)
    else:
        edges = np.histogram_bin_edges(values, bins=30)
    ax.hist(ref.ravel(), bins=edges, density=True, color=plots.REFERENCE_COLOR, alpha=0.35)
    ax.hist(reps.ravel(), bins=edges, density=True, histtype="step", color=color, lw=1.4)
    ax.hist(obs.ravel(), bins=edges, density=True, histtype="step", color="k", lw=1.0, ls="--")
