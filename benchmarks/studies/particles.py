"""``particles`` (001, "Ensuring Convergence"): when do more ELBO particles pay for themselves?

The document refits its coin with ``Trace_ELBO(num_particles=32)`` and sees a smoother loss. Two
sweeps over the particle count answer whether that is worth its cost: at a fixed number of steps
(each step costs more; the end-state loss sd should fall) and at a fixed gradient budget (steps x
particles constant; fewer, better-estimated steps). The comparison at a fixed budget is on the
final ELBO, estimated from fresh particles whatever the training count, so it is fair across
counts. Every larger count is tested against one particle, none picked first: a count "pays" when
its ELBO beats one particle's by more than t(n - 1) times their combined standard error, n the
fewer seeds of the two, at 95% Bonferroni-corrected over the larger counts compared
(``stats.decide``). Picking the best count and then testing it alone as if it had been chosen in
advance would call noise a gain far more often than one time in twenty.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.studies import stats
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

COUNTS = (1, 2, 4, 8, 16, 32, 64)
FIXED, BUDGET = "fixed_steps", "fixed_budget"


def _variants(counts: tuple[int, ...], steps: int, budget: int) -> tuple[Variant, ...]:
    fixed = tuple(Variant(f"{FIXED}_k{k}", {"mode": FIXED, "particles": k},
                          {"num_particles": k, "num_steps": steps}) for k in counts)
    equal = tuple(Variant(f"{BUDGET}_k{k}", {"mode": BUDGET, "particles": k},
                          {"num_particles": k, "num_steps": max(1, budget // k)}) for k in counts)
    return fixed + equal


MODELS = ("coin", "linreg_outliers", "hierarchical_linreg")
METHODS = ("manual:beta", "autodiagonalnormal")  # the document's coin guide; one autoguide

SCOPES = {
    # smoke (the test suite): the document's coin guide; budget k=4 shares the fixed-steps cell
    "smoke": Scope(("coin",), ("manual:beta",), 2, _variants((1, 4), steps=300, budget=1200)),
    "quick": Scope(MODELS, METHODS, 4, _variants(COUNTS, steps=2000, budget=16000)),
    "paper": Scope(MODELS, METHODS, 8, _variants(COUNTS, steps=5000, budget=40000)),
}

KEYS = ["model", "method", "mode", "particles"]


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, mode, particles): end-state loss sd, final ELBO with its
    standard error over seeds, steps to plateau, agreement and times (medians over ok seeds)."""
    out = []
    for key, group in rows.groupby(KEYS, sort=True):
        ok = group[group["status"] == "ok"]
        elbos = pd.to_numeric(ok.get("final_elbo"), errors="coerce") if len(ok) else \
            pd.Series(dtype=float)
        elbo, elbo_se = stats.mean_se(elbos)
        conv = pd.to_numeric(ok.get("converged_step"), errors="coerce") if len(ok) else None
        out.append({
            **dict(zip(KEYS, key, strict=True)),
            "num_steps": stats.median(ok, "num_steps"),
            "final_loss_sd": stats.median(ok, "final_loss_sd"),
            "final_loss_mean": stats.median(ok, "final_loss_mean"),
            "final_elbo": elbo,
            "final_elbo_se": elbo_se,
            "final_elbo_n": int(np.isfinite(elbos.to_numpy(dtype=float)).sum()),
            "converged_step": stats.median(ok, "converged_step"),
            "plateau_frac": float(conv.notna().mean()) if conv is not None and len(conv) else
            math.nan,
            **stats.group_summary(group),
        })
    return pd.DataFrame(out)


def _pays(sub: pd.DataFrame) -> str:
    """At a fixed budget: which larger counts beat one particle's final ELBO, each tested
    (Bonferroni over all of them), and the best of those that do."""
    sub = sub[np.isfinite(sub["final_elbo"])].sort_values("particles")
    if len(sub) < 2:
        return "too few finished runs at a fixed budget to compare particle counts"
    base, others = sub.iloc[0], sub.iloc[1:]
    budget = stats.fmt(base["num_steps"] * base["particles"])
    tests = len(others)
    gap = others["final_elbo"] - base["final_elbo"]
    se = np.hypot(others["final_elbo_se"], base["final_elbo_se"])
    df = np.minimum(others["final_elbo_n"], base["final_elbo_n"]) - 1
    decisions = [stats.decide(g, s, d, tests) for g, s, d in zip(gap, se, df, strict=True)]
    rule = stats.rule(float(df.min()), tests)
    lead = (f"at a fixed budget of {budget} particle-gradients, each of {tests} larger "
            f"count{'s' if tests != 1 else ''} against {int(base['particles'])} particle "
            f"(final ELBO {stats.pm(base['final_elbo'], base['final_elbo_se'])}; a gain counts "
            f"{rule}): ")
    wins = [i for i, d in enumerate(decisions) if d == 1]
    if not wins:
        best = int(np.argmax(gap.to_numpy()))
        return lead + (f"none beats it, so more particles do not clearly pay (the best of them, "
                       f"{int(others['particles'].iloc[best])} particles, "
                       f"{stats.pm(gap.iloc[best], se.iloc[best])} nats)")
    best = max(wins, key=lambda i: gap.iloc[i])
    counts = ", ".join(str(int(others["particles"].iloc[i])) for i in wins)
    return lead + (f"{counts} particles beat it, so more particles pay; the largest gain, "
                   f"{int(others['particles'].iloc[best])} particles, "
                   f"{stats.pm(gap.iloc[best], se.iloc[best])} nats")


def _cost(sub: pd.DataFrame) -> str:
    """At fixed steps: how far the end-state loss sd falls and what the run time multiplies by."""
    sub = sub[np.isfinite(sub["final_loss_sd"])].sort_values("particles")
    if len(sub) < 2:
        return ""
    lo, hi = sub.iloc[0], sub.iloc[-1]
    ratio = hi["run_s"] / lo["run_s"] if lo["run_s"] > 0 else math.nan
    return (f"; at {stats.fmt(lo['num_steps'])} steps, {int(hi['particles'])} particles take the "
            f"end-state loss sd from {stats.fmt(lo['final_loss_sd'])} to "
            f"{stats.fmt(hi['final_loss_sd'])} nats for {stats.fmt(ratio, 2)}x the run time")


def answer(derived: pd.DataFrame) -> str:
    """One clause per (model, method): does a larger count win at a fixed budget, and what does
    it buy and cost at fixed steps."""
    if derived.empty:
        return "No runs of this study are in the results."
    parts = []
    for (model, method), sub in derived.groupby(["model", "method"], sort=True):
        text = _pays(sub[sub["mode"] == BUDGET]) + _cost(sub[sub["mode"] == FIXED])
        parts.append(f"{model} x {method}: {text}.")
    return " ".join(parts) + stats.coverage_note(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """End-state loss sd against particles at fixed steps; final ELBO against particles at a fixed
    budget (error bars: standard error over seeds)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for (model, method), sub in derived.groupby(["model", "method"], sort=True):
        label = f"{model} x {method}"
        fixed = sub[sub["mode"] == FIXED].sort_values("particles")
        axes[0].plot(fixed["particles"], fixed["final_loss_sd"], "o-", label=label)
        equal = sub[sub["mode"] == BUDGET].sort_values("particles")
        base = equal["final_elbo"].iloc[0] if len(equal) else 0.0
        axes[1].errorbar(equal["particles"], equal["final_elbo"] - base,
                         yerr=equal["final_elbo_se"].fillna(0.0), fmt="o-", capsize=3,
                         label=label)
    axes[0].set(xscale="log", yscale="log", xlabel="particles", ylabel="end-state loss sd (nats)",
                title="fixed number of steps")
    axes[1].set(xscale="log", xlabel="particles", ylabel="final ELBO - ELBO at fewest particles",
                title="fixed gradient budget (steps x particles)")
    axes[1].axhline(0.0, color="k", lw=0.8, ls="--")
    for ax in axes:
        stats.log_ticks(ax, derived["particles"])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


STUDY = Study(
    name="particles",
    question="When do more ELBO particles pay for themselves?",
    document="001",
    section="Ensuring Convergence",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Left: sd of the loss over the last 10% of steps (median over seeds) at a "
                   "fixed number of steps. Right: final ELBO (fresh particles) relative to the "
                   "fewest particles at a fixed budget of particle-gradients; bars: standard "
                   "error over seeds.",
)
