"""The ``warm_start`` study's derived table, answer and figure (``benchmarks.studies.warm_start``).

A warm fit and the scratch fit of the same (method, seed, new data set) form a pair; the saving
of the pair is ``1 - cost_warm / cost_scratch`` (SVI: steps to the loss plateau; NUTS: leapfrog
steps of warm-up plus sampling) and ``time_scratch - time_warm`` seconds (SVI: wall time to the
plateau; NUTS: the whole run). Means over pairs with their standard errors carry the noise.
A pair whose scratch or warm SVI fit shows no plateau has no step saving and is counted apart.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats

BASE, SCRATCH, WARM = "base", "scratch", "warm"


def _cost(rows: pd.DataFrame) -> pd.Series:
    """Per row: plateau step (SVI) or leapfrog steps (NUTS)."""
    svi = pd.to_numeric(rows.get("converged_step"), errors="coerce")
    nuts = pd.to_numeric(rows.get("grad_evals"), errors="coerce")
    return pd.Series(np.where(rows["method"] == NUTS, nuts, svi), index=rows.index)


def pairs(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, data seed, seed) with both an ok scratch and an ok warm fit."""
    ok = rows[(rows["status"] == "ok") & rows["start"].isin([SCRATCH, WARM])].copy()
    if ok.empty:
        return pd.DataFrame(columns=["method", "data_seed", "seed", "saved_frac", "saved_s"])
    ok["cost"] = _cost(ok)
    ok["time"] = pd.to_numeric(ok["time_to_plateau_s"], errors="coerce")
    wide = ok.pivot_table(index=["method", "data_seed", "seed"], columns="start",
                          values=["cost", "time"], aggfunc="first")
    wide.columns = [f"{a}_{b}" for a, b in wide.columns]
    wide = wide.reset_index()
    for col in ("cost_scratch", "cost_warm", "time_scratch", "time_warm"):
        if col not in wide:
            wide[col] = math.nan
    wide = wide.dropna(subset=["cost_scratch", "cost_warm"], how="all")
    wide["saved_frac"] = 1.0 - wide["cost_warm"] / wide["cost_scratch"]
    wide["saved_s"] = wide["time_scratch"] - wide["time_warm"]
    return wide


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, start) over the new data sets: counts, median cost and time, the
    agreement with each data set's reference, and (on the warm row) the saving per pair."""
    if rows.empty or "start" not in rows.columns:
        return pd.DataFrame()
    rows = rows[rows["start"].isin([SCRATCH, WARM])]
    paired = pairs(rows)
    out = []
    for (method, start), group in rows.groupby(["method", "start"], sort=True):
        ok = group[group["status"] == "ok"]
        cost = _cost(ok) if len(ok) else pd.Series(dtype=float)
        mine = paired[paired["method"] == method]
        frac, frac_se = stats.mean_se(mine["saved_frac"]) if start == WARM else (math.nan,) * 2
        secs, secs_se = stats.mean_se(mine["saved_s"]) if start == WARM else (math.nan,) * 2
        out.append({
            "method": method, "start": start,
            "n_data_sets": int(group["data_seed"].nunique()),
            "cost_unit": "leapfrog steps" if method == NUTS else "steps to plateau",
            "cost": float(np.nanmedian(cost)) if np.isfinite(cost).any() else math.nan,
            "n_no_plateau": int(cost.isna().sum()),
            "time_to_plateau_s": stats.median(ok, "time_to_plateau_s"),
            "num_warmup": stats.median(ok, "num_warmup"),
            "saved_frac": frac, "saved_frac_se": frac_se,
            "saved_s": secs, "saved_s_se": secs_se,
            "n_pairs": int(np.isfinite(mine["saved_frac"]).sum()) if start == WARM else 0,
            **stats.group_summary(group),
        })
    return pd.DataFrame(out)


def _clause(sub: pd.DataFrame) -> str:
    method = sub["method"].iloc[0]
    by = {r["start"]: r for r in sub.to_dict("records")}
    warm, scratch = by.get(WARM), by.get(SCRATCH)
    if warm is None or scratch is None:
        return f"{method}: no scratch/warm pair finished"
    unit = warm["cost_unit"]
    what = (f"median {stats.fmt(warm['cost'])} vs {stats.fmt(scratch['cost'])} {unit} "
            f"(warm vs scratch), saving {stats.pm(100 * warm['saved_frac'], 100 * warm['saved_frac_se'])}"
            f"% of them and {stats.pm(warm['saved_s'], warm['saved_s_se'], 2)} s per new data "
            f"set over {warm['n_pairs']} pairs")
    if warm["n_no_plateau"] or scratch["n_no_plateau"]:
        what += (f" ({warm['n_no_plateau']} warm and {scratch['n_no_plateau']} scratch fits "
                 "showed no plateau)")
    metric = warm["agreement_metric"] or scratch["agreement_metric"]
    if metric:
        what += (f"; {metric} warm {stats.fmt(warm['agreement'])} vs scratch "
                 f"{stats.fmt(scratch['agreement'])} (floor {stats.fmt(warm['agreement_floor'])}), "
                 f"verdicts {warm['verdict'] or 'none'}/{scratch['verdict'] or 'none'}")
    return f"{method}: {what}"


def answer(derived: pd.DataFrame) -> str:
    """One clause per method, then SVI's mean saving against NUTS's."""
    if derived.empty:
        return "No runs of this study are in the results."
    parts = [_clause(sub) + "." for _, sub in derived.groupby("method", sort=True)]
    warm = derived[derived["start"] == WARM]
    svi, nuts = warm[warm["method"] != NUTS], warm[warm["method"] == NUTS]
    if len(svi) and len(nuts):
        s, n = float(np.nanmean(svi["saved_frac"])), float(np.nanmean(nuts["saved_frac"]))
        parts.append(f"On average a warm start saves {stats.fmt(100 * s)}% of SVI's steps to "
                     f"plateau and {stats.fmt(100 * n)}% of NUTS's leapfrog steps.")
    return " ".join(parts) + stats.coverage_note(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Loss traces scratch vs warm on the first new data set; saved fraction per method."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    svi = rows[(rows["method"] != NUTS) & rows["start"].isin([SCRATCH, WARM])
               & rows.get("loss_trace", pd.Series(dtype=object)).notna()] if len(rows) else rows
    if len(svi):
        first = svi.loc[pd.to_numeric(svi["fit_index"]).idxmin(), "data_seed"]
        for i, (method, sub) in enumerate(svi[svi["data_seed"] == first].groupby("method")):
            for start, style in ((SCRATCH, "-"), (WARM, "--")):
                traces = [np.asarray(json.loads(t), dtype=float) for t in
                          sub[sub["start"] == start]["loss_trace"] if isinstance(t, str)]
                if traces:
                    med = np.nanmedian(np.stack([t[:, 1] for t in traces]), axis=0)
                    axes[0].plot(traces[0][:, 0], med, style, color=f"C{i}",
                                 label=f"{method} {start}")
        axes[0].set(xlabel="step", ylabel="loss (median over seeds)",
                    title=f"new data set (gen_data({first}))")
        finite = np.concatenate([np.asarray(json.loads(t), dtype=float)[:, 1] for t in svi["loss_trace"]
                                 if isinstance(t, str)])
        finite = finite[np.isfinite(finite)]
        if finite.size:
            axes[0].set_ylim(np.min(finite) - 1, np.percentile(finite, 95) + 1)
        axes[0].legend(fontsize=7)
    warm = derived[derived["start"] == WARM] if len(derived) else derived
    if len(warm):
        axes[1].bar(warm["method"], 100 * warm["saved_frac"],
                    yerr=100 * warm["saved_frac_se"].fillna(0.0), capsize=4, color="C2")
        axes[1].axhline(0.0, color="k", lw=0.8)
        axes[1].set(ylabel="cost saved by the warm start (%)", title="saving per new data set")
        axes[1].tick_params(axis="x", labelrotation=20)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
