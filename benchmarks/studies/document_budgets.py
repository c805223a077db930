"""``document_budgets`` (001, "SVI Vs MCMC In High Dimensions"): the five guides at the document's
own budgets, their wall times beside NUTS's, and whether a lower final loss means better agreement.

The document fits its hierarchical regression at J = 8 (``hierarchical_linreg``'s default size)
with AutoDiagonalNormal, AutoMultivariateNormal, AutoDAIS (K = 16, 50,000 steps), AutoBNAF and
AutoIAF, quotes their wall times and the mean loss over the end of each trace, and ranks the
guides by that loss alone. The paper profile's settings are the document's already (Adam 0.01,
5000 steps x 100 particles, AutoDAIS's K = 16 and 50,000 steps: ``numpyro_guides.OVERRIDES``;
NUTS 2000 + 20000 draws, one chain: ``nuts.OVERRIDES``), so the paper variant overrides nothing;
smoke and quick run their profiles' smaller budgets. Every seed is its own program, so the
times have a spread over seeds (``timing``). Whether the loss ranks the guides as agreement does
is a Spearman correlation, per seed, between the guides' final loss (-ELBO from fresh particles)
and their largest marginal W1 to the exact reference, averaged over seeds and called real beyond
t(seeds - 1) standard errors (``stats.decide``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats as sstats

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats, timing
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

MODEL = "hierarchical_linreg"
GUIDES = ("autodiagonalnormal", "automvn", "autodais", "autobnaf", "autoiaf")
METHODS = (NUTS, *GUIDES)
#: The document's own figures (001), quoted as its claim: wall time in seconds (NUTS: its
#: warm-up 4.47 s plus sampling 12.6 s) and the mean loss over the end of the trace.
DOCUMENT: dict[str, tuple[float, float]] = {
    NUTS: (4.47 + 12.6, math.nan),
    "autodiagonalnormal": (8.49, 238.69),
    "automvn": (8.1, 237.89),
    "autodais": (4 * 60 + 57, 238.36),
    "autobnaf": (29.8, 237.52),
    "autoiaf": (11.2, 237.60),
}
MIN_GUIDES = 3
"""Guides a seed needs for a rank correlation (two guides give only +1 or -1)."""

DOCUMENT_VARIANT = Variant("document", {"budget": "document"})
PROFILE_VARIANT = Variant("profile", {"budget": "profile"})
SCOPES = {
    "smoke": Scope((MODEL,), (NUTS, "autodiagonalnormal"), 2,
                   (PROFILE_VARIANT,)),
    "quick": Scope((MODEL,), METHODS, 3, (PROFILE_VARIANT,)),
    "paper": Scope((MODEL,), METHODS, 3, (DOCUMENT_VARIANT,)),
}


def _num(rows: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(rows.get(column, pd.Series(math.nan, index=rows.index)),
                         errors="coerce").astype(float)


def seed_rank_correlations(rows: pd.DataFrame) -> pd.Series:
    """Per seed, the Spearman correlation between the guides' final loss (-final_elbo) and their
    headline agreement metric, over the guides with both finite (nan below ``MIN_GUIDES``)."""
    ok = rows[(rows["status"] == "ok") & (rows["method"] != NUTS)]
    metric = stats.headline(ok)
    out = {}
    for seed, sub in ok.groupby("seed", sort=True):
        loss = -_num(sub, "final_elbo")
        agree = _num(sub, metric) if metric else pd.Series(math.nan, index=sub.index)
        keep = np.isfinite(loss) & np.isfinite(agree)
        if keep.sum() < MIN_GUIDES or loss[keep].nunique() < 2 or agree[keep].nunique() < 2:
            out[seed] = math.nan
            continue
        out[seed] = float(sstats.spearmanr(loss[keep], agree[keep]).statistic)
    return pd.Series(out, dtype=float)


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method: settings, final loss (mean and se over seeds of -final_elbo; the
    trace's end-state mean as the document measured it), agreement and verdict, times and their
    ratio to NUTS (``timing.versus_nuts``), the document's figures, and the loss-agreement rank
    correlation with its se and seeds (the same on every row)."""
    out = []
    for method, group in rows.groupby("method", sort=True):
        ok = group[group["status"] == "ok"]
        loss, loss_se = stats.mean_se(-_num(ok, "final_elbo"))
        wall_doc, loss_doc = DOCUMENT.get(method, (math.nan, math.nan))
        out.append({"method": method, "num_steps": stats.median(ok, "num_steps"),
                    "num_particles": stats.median(ok, "num_particles"),
                    "final_loss": loss, "final_loss_se": loss_se,
                    "trace_end_loss": stats.median(ok, "final_loss_mean"),
                    **stats.group_summary(group), "failure": stats.first_failure(group),
                    "document_wall_s": wall_doc, "document_loss": loss_doc})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    table = table.merge(timing.versus_nuts(rows), on="method", how="left")
    rho = seed_rank_correlations(rows)
    mean, se = stats.mean_se(rho)
    table["rank_corr"], table["rank_corr_se"] = mean, se
    table["rank_corr_seeds"] = int(np.isfinite(rho.to_numpy()).sum())
    rank = {m: i for i, m in enumerate(METHODS)}  # the document's order
    return table.sort_values("method", key=lambda s: s.map(lambda m: rank.get(m, len(rank))))


def _order(table: pd.DataFrame, column: str) -> str:
    sub = table[np.isfinite(table[column])].sort_values(column)
    return " < ".join(sub["method"])


def _times(table: pd.DataFrame) -> str:
    parts = []
    for _, r in table.iterrows():
        doc = (f"; document {stats.fmt(r['document_wall_s'])} s"
               if np.isfinite(r["document_wall_s"]) else "")
        cold = "" if r["compile_cold"] else ", compile served by a cache"
        text = (f"{r['method']} {stats.fmt(r['wall_once_s'])} s (compile "
                f"{stats.fmt(r['compile_once_s'])} s{cold}{doc})")
        if r["method"] != NUTS:
            text += (f", NUTS/it {timing.row_ratio(r, 'speedup_wall')} with compile, "
                     f"{timing.row_ratio(r, 'speedup_run')} without")
        parts.append(text)
    return "; ".join(parts)


def _ranking(table: pd.DataFrame) -> str:
    r = table.iloc[0]
    n, guides = int(r["rank_corr_seeds"]), int(np.isfinite(table["final_loss"]).sum())
    metric = r["agreement_metric"] or "agreement"
    head = (f"Spearman correlation of final loss with {metric} over the {guides} guides, mean over "
            f"{n} seeds: {stats.pm(r['rank_corr'], r['rank_corr_se'], 2)}")
    decision = stats.decide(r["rank_corr"], r["rank_corr_se"], n - 1)
    if decision is None:
        return (head + "; not decidable (it needs at least 3 guides judged on each of 2 seeds), "
                "so the data neither support nor refute ranking the guides by loss")
    rule = stats.rule(n - 1)
    return head + " (" + rule + "): " + {
        1: "a lower loss goes with better agreement, so the data agree with ranking by loss",
        -1: "a lower loss goes with worse agreement, so the data contradict ranking by loss",
        0: "not resolved from zero, so the loss does not show which guide agrees better and "
           "the data do not support ranking by loss alone",
    }[decision]


def answer(derived: pd.DataFrame) -> str:
    """Wall times beside NUTS's and the document's, final losses beside the document's,
    agreement, and whether the loss ranks the guides as agreement does."""
    if derived.empty:
        return "No runs of this study are in the results."
    table = derived[derived["n_ok"] > 0].set_index("method", drop=False)
    guides = table[table["method"] != NUTS]
    if guides.empty:
        return ("No guide's run finished." + stats.unfinished(derived)
                + stats.coverage_note(derived))
    doc_losses = ", ".join(f"{m} {stats.fmt(DOCUMENT[m][1], 5)}" for m in GUIDES)
    lead = ("The document (001) fits hierarchical_linreg at J = 8 and quotes wall times of "
            "4 min 57 s (AutoDAIS, K = 16, 50,000 steps), 29.8 s (AutoBNAF) and 11.2 s "
            f"(AutoIAF) and final average losses {doc_losses}, ranking the guides by loss alone.")
    steps = ", ".join(f"{m} {stats.fmt(r['num_steps'])} x {stats.fmt(r['num_particles'])}"
                      for m, r in guides.iterrows())
    times = f"Here (steps x particles: {steps}), compile + run per seed: " + _times(table) + "."
    losses = "; ".join(f"{m} {stats.pm(r['final_loss'], r['final_loss_se'], 5)}"
                       f" (trace end {stats.fmt(r['trace_end_loss'], 5)})"
                       for m, r in guides.iterrows())
    agree = "; ".join(f"{m} {stats.fmt(r['agreement'], 2)} ({r['verdict'] or 'not judged'})"
                      for m, r in table.iterrows())
    metric = guides["agreement_metric"].iloc[0] if len(guides) else ""
    text = (f"{lead} {times} Final loss (-ELBO from fresh particles, mean ± se over seeds): "
            f"{losses}; by loss {_order(guides, 'final_loss')}, by {metric or 'agreement'} "
            f"{_order(guides, 'agreement')}. Agreement ({metric}, median over seeds, and the "
            f"worst verdict): {agree}. {_ranking(guides)}.")
    return text + timing.caveats(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Wall time per method beside the document's; final loss per guide beside the document's;
    each seed's final loss against its agreement (the ranking question)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    table = derived.set_index("method", drop=False)
    x = np.arange(len(table))
    axes[0].bar(x - 0.2, table["wall_once_s"], 0.4, label="here (compile + run)")
    axes[0].bar(x + 0.2, table["document_wall_s"], 0.4, label="document")
    axes[0].set(xticks=x, yscale="log", ylabel="wall time per seed (s)",
                title="wall time, NUTS and the guides")
    axes[0].set_xticklabels(table["method"], rotation=30, ha="right", fontsize=8)
    guides = table[table["method"] != NUTS]
    g = np.arange(len(guides))
    axes[1].errorbar(g, guides["final_loss"], yerr=guides["final_loss_se"].fillna(0.0), fmt="o",
                     capsize=3, label="here: -ELBO, mean ± se over seeds")
    axes[1].plot(g, guides["trace_end_loss"], "s", mfc="none", label="here: trace end (median)")
    axes[1].plot(g, guides["document_loss"], "x", ms=9, color="k", label="document: av loss")
    axes[1].set(xticks=g, ylabel="final loss (nats)", title="final loss per guide")
    axes[1].set_xticklabels(guides["method"], rotation=30, ha="right", fontsize=8)
    ok = rows[(rows["status"] == "ok") & (rows["method"] != NUTS)] if len(rows) else rows
    metric = stats.headline(ok) if len(ok) else ""
    for method, sub in (ok.groupby("method", sort=True) if metric else ()):
        axes[2].plot(-_num(sub, "final_elbo"), _num(sub, metric), "o", label=method)
    r = derived.iloc[0] if len(derived) else None
    rho = stats.pm(r["rank_corr"], r["rank_corr_se"], 2) if r is not None else "n/a"
    axes[2].set(xlabel="final loss (nats)", ylabel=f"{metric or 'agreement'} (reference sd)",
                yscale="log", title=f"each seed: loss against agreement (rank corr {rho})")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


STUDY = Study(
    name="document_budgets",
    question="At the document's own budgets, how do the five guides' wall times compare with "
             "NUTS's, and does a lower final loss mean better agreement with the exact "
             "reference?",
    document="001",
    section="SVI Vs MCMC In High Dimensions",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="hierarchical_linreg at J = 8. Left: wall time per seed (the method's compile "
                   "plus the seed's run, median over seeds) beside the document's. Middle: each "
                   "guide's final loss (-ELBO from fresh particles, mean ± se over seeds; "
                   "squares: mean loss over the trace's last 10%, median) beside the document's "
                   "average loss. Right: every seed's final loss against its agreement metric; "
                   "the title gives the Spearman rank correlation, mean ± se over seeds.",
    seed_programs=True,
)
