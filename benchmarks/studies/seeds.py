"""``seeds`` (001, "Histogram of Final Loss Distributions"): how often does each guide fail, and
is the failure visible in its loss?

The document compares guides by the histogram of their end-state losses at one seed. Over many
seeds (one compiled program, vmapped), a guide's runs either reach the best optimum any seed found
or stall above it. A seed counts as ending in a worse optimum when its final loss exceeds the best
seed's by more than twice the larger of the two end-state loss sds (the loss's own step-to-step
scatter), so noise alone does not make a seed "worse". The fraction comes with a Wilson interval,
and the agreement verdicts say whether a failure shows in the loss: a failing seed that ended in a
worse optimum was visible; one that reached the best loss was not.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

ALL_MODELS = ("coin", "gamma_concentration", "dirichlet_categorical", "multimodal_2d",
              "correlated_gaussian", "linreg_outliers", "hierarchical_linreg", "bnn")
DEFAULT = (Variant("profile_settings"),)
LOSS_NOISE_SDS = 2.0
"""A seed is in a worse optimum when its final loss exceeds the best seed's by more than this
many end-state loss sds (the larger of the two)."""

SCOPES = {
    "smoke": Scope(("coin", "linreg_outliers"), ("autodiagonalnormal",), 6, DEFAULT),
    "quick": Scope(ALL_MODELS, (), 16, DEFAULT, exclude=(NUTS,)),
    "paper": Scope(ALL_MODELS, (), 16, DEFAULT, exclude=(NUTS,)),
}


def _worse(ok: pd.DataFrame) -> tuple[np.ndarray, float]:
    """(per-seed flag: ended above the best seed beyond the loss noise, best final loss)."""
    loss = pd.to_numeric(ok["final_loss_mean"], errors="coerce").to_numpy(dtype=float)
    sd = pd.to_numeric(ok["final_loss_sd"], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    finite = np.isfinite(loss)
    if not finite.any():
        return np.zeros(len(ok), dtype=bool), np.nan
    best = int(np.nanargmin(np.where(finite, loss, np.nan)))
    tol = LOSS_NOISE_SDS * np.maximum(sd, sd[best])
    return ~finite | (loss - loss[best] > tol), float(loss[best])


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method): the spread of final losses over seeds, the seeds in a worse
    optimum with a 95% Wilson interval, and how many failing verdicts the loss shows."""
    out = []
    for (model, method), group in rows.groupby(["model", "method"], sort=True):
        ok = group[group["status"] == "ok"]
        base = {"model": model, "method": method, **stats.group_summary(group)}
        if ok.empty:
            out.append(base)
            continue
        worse, best = _worse(ok)
        n = len(ok)
        lo, hi = stats.wilson(int(worse.sum()), n)
        fail = (ok["verdict"] == "fail").to_numpy() if "verdict" in ok.columns else np.zeros(n, bool)
        loss = pd.to_numeric(ok["final_loss_mean"], errors="coerce")
        out.append({
            **base,
            "loss_best": best,
            "loss_median": float(loss.median()),
            "loss_max": float(loss.max()),
            "loss_sd_median": stats.median(ok, "final_loss_sd"),
            "n_worse": int(worse.sum()),
            "frac_worse": float(worse.mean()),
            "frac_worse_lo": lo,
            "frac_worse_hi": hi,
            "n_fail_in_worse": int((fail & worse).sum()),
            "n_fail_at_best": int((fail & ~worse).sum()),
        })
    return pd.DataFrame(out)


def answer(derived: pd.DataFrame) -> str:
    """Which guides stall in worse optima (with intervals), and whether their failures show."""
    if derived.empty or "n_worse" not in derived.columns:
        return "No finished runs of this study are in the results."
    judged = derived[derived["n_ok"] > 0]
    stalls = judged[judged["n_worse"] > 0].sort_values("frac_worse", ascending=False)
    n_groups = len(judged)
    if stalls.empty:
        text = (f"On every one of the {n_groups} (model, guide) pairs all seeds reached the best "
                f"seed's final loss within {LOSS_NOISE_SDS:g} end-state loss sds")
    else:
        worst = [f"{r.method} on {r.model} on {int(r.n_worse)}/{int(r.n_ok)} seeds (95% Wilson "
                 f"{stats.fmt(r.frac_worse_lo, 2)}-{stats.fmt(r.frac_worse_hi, 2)}, losses "
                 f"{stats.fmt(r.loss_best)} best to {stats.fmt(r.loss_max)})"
                 for r in stalls.head(3).itertuples()]
        text = (f"{len(stalls)} of {n_groups} (model, guide) pairs have seeds that stall in a "
                f"worse optimum than their best seed, most often " + "; ".join(worst))
    visible = int(judged["n_fail_in_worse"].fillna(0).sum())
    hidden = int(judged["n_fail_at_best"].fillna(0).sum())
    if visible + hidden == 0:
        text += ". No seed failed its agreement verdict."
    else:
        text += (f". Of the {visible + hidden} seeds whose agreement verdict is fail, {visible} "
                 f"ended in a worse optimum (visible in the loss) and {hidden} reached the best "
                 "loss (invisible in the loss: the best optimum itself disagrees).")
    if not judged.loc[judged["verdict"] != "", "reference_ok"].all():
        text += " Some references failed their gates, so those verdicts carry little weight."
    return text + stats.coverage_note(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Final loss minus the best seed's, one strip per (model, guide); red: verdict fail."""
    import matplotlib.pyplot as plt

    ok = rows[rows["status"] == "ok"].copy()
    groups = sorted(ok.groupby(["model", "method"]).groups) if len(ok) else []
    fig, ax = plt.subplots(figsize=(9, max(3.0, 0.28 * len(groups) + 1)))
    for i, key in enumerate(groups):
        g = ok[(ok["model"] == key[0]) & (ok["method"] == key[1])]
        loss = pd.to_numeric(g["final_loss_mean"], errors="coerce").to_numpy(dtype=float)
        gap = loss - np.nanmin(loss) if np.isfinite(loss).any() else loss
        fail = (g["verdict"] == "fail").to_numpy() if "verdict" in g.columns else np.zeros(len(g))
        jitter = np.linspace(-0.25, 0.25, len(g)) if len(g) > 1 else np.zeros(len(g))
        ax.scatter(np.maximum(gap, 1e-3), i + jitter, s=14,
                   c=np.where(fail.astype(bool), "tab:red", "tab:blue"), alpha=0.7)
    ax.set_yticks(range(len(groups)), [f"{m} x {g}" for m, g in groups], fontsize=7)
    ax.set(xscale="log", xlabel="final loss - best seed's final loss (nats; 1e-3 at the best)")
    ax.grid(alpha=0.3)
    ax.set_title("end-state loss over seeds (red: agreement verdict fail)", fontsize=10)
    fig.tight_layout()
    return fig


STUDY = Study(
    name="seeds",
    question="How often does each guide end in a worse optimum than its best seed, and is the "
             "failure visible in its loss?",
    document="001",
    section="Histogram of Final Loss Distributions",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Each dot is one seed: its final loss (mean over the last 10% of steps) above "
                   "the best seed's of the same model and guide, on a log axis; red dots failed "
                   "their agreement verdict against the reference.",
)
