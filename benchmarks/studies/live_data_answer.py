"""The ``live_data`` study's table, answer and figure: pure functions of its rows.

A fit is "within the noise" of the exact posterior when its verdict is pass (W1 within the noise
floor of exact draws, and the other gates). Per arm (live SVI, SVI restarted from scratch, NUTS
re-run; per guide for SVI) and batch: how many seeds pass (Wilson interval), W1 (mean ± se over
seeds) against its floor, and what the batch cost (gradient evaluations and run seconds, median
over seeds; live SVI pays only the steps since the last batch). Per arm over the stream: the seeds
whose every batch passed and the stream's total cost. Live SVI's lag: per batch, the paired
difference of W1 (live - restart) over seeds; it "costs agreement" where that difference lies
above zero beyond the noise (``beyond_noise``), or where live fails the verdict while the restart
passes.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.studies import stats

LIVE, RESTART, NUTS_VARIANT = "live", "restart", "nuts"
VARIANT_ORDER = (LIVE, RESTART, NUTS_VARIANT)
LAGS, AHEAD, SAME, UNDECIDED = "live lags", "live ahead", "no difference", "undecided"
QUOTE = ("The ability to update the data going into a model in the course of running variational "
         "inference. Imagine you are accumulating data as you go")


def beyond_noise(diff: float, se: float) -> str:
    """The suite's decision on a paired difference live - restart of W1 and its standard error
    over seeds (the one place the rule lives here: beyond twice the se)."""
    if not (np.isfinite(diff) and np.isfinite(se)):
        return UNDECIDED
    if diff - 2 * se > 0:
        return LAGS
    if diff + 2 * se < 0:
        return AHEAD
    return SAME


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def arm(method: str, variant: str) -> str:
    """How the answer names an arm: ``nuts``, or the variant and the guide (``live autonormal``)."""
    return variant if variant == NUTS_VARIANT else f"{variant} {method}"


def _arms(rows: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = rows[["method", "variant"]].astype(str).drop_duplicates().itertuples(index=False)
    return sorted({(m, v) for m, v in pairs},
                  key=lambda p: (p[0] == "nuts", p[0],
                                 VARIANT_ORDER.index(p[1]) if p[1] in VARIANT_ORDER else 9))


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (arm, batch): seeds passing with a Wilson interval, W1 against its floor, the
    batch's cost, and for live SVI the lag behind the restart; per arm the whole stream's."""
    out = []
    if rows.empty or "variant" not in rows.columns:
        return pd.DataFrame(out)
    for method, variant in _arms(rows):
        mine = rows[(rows["method"].astype(str) == method)
                    & (rows["variant"].astype(str) == variant)]
        ok = mine[mine["status"] == "ok"]
        passed = ok.get("verdict", pd.Series("", index=ok.index)).astype(str) == "pass"
        per_seed = mine.assign(passed=(mine["status"] == "ok") & (
            mine.get("verdict", pd.Series("", index=mine.index)).astype(str) == "pass"))
        seeds_all = int(per_seed.groupby("seed")["passed"].all().sum())
        stream_g = ok.groupby("seed")["grad_evals"].sum() if len(ok) else pd.Series(dtype=float)
        stream_s = ok.groupby("seed")["run_s"].sum() if len(ok) else pd.Series(dtype=float)
        restart = rows[(rows["method"].astype(str) == method) & (rows["variant"] == RESTART)
                       & (rows["status"] == "ok")]
        for n_obs in sorted(_num(mine, "n_obs").dropna().unique()):
            at = mine[_num(mine, "n_obs") == n_obs]
            a = at[at["status"] == "ok"]
            k = int(passed[a.index].sum()) if len(a) else 0
            lo, hi = stats.wilson(k, len(at))
            record = {"method": method, "variant": variant, "arm": arm(method, variant),
                      "batch": int(_num(at, "batch").min()), "n_obs": int(n_obs),
                      "n_seeds": int(at["seed"].nunique()), "n_ok": int(len(a)),
                      "n_pass": k, "pass_lo": lo, "pass_hi": hi,
                      "verdict": stats.worst_verdict(list(a.get("verdict", []))),
                      "w1_max_floor": stats.median(a, "w1_max_floor"),
                      "grad_evals": stats.median(a, "grad_evals"),
                      "run_s": stats.median(a, "run_s"),
                      "compile_s": stats.median(a, "compile_s"),
                      "n_failed": int((at["status"] == "failed").sum()),
                      "seeds_all_pass": seeds_all,
                      "stream_seeds": int(mine["seed"].nunique()),
                      "stream_grad_evals": float(stream_g.median()) if len(stream_g) else math.nan,
                      "stream_run_s": float(stream_s.median()) if len(stream_s) else math.nan}
            record["w1_max"], record["w1_max_se"] = stats.mean_se(_num(a, "w1_max"))
            record["lag_w1"], record["lag_w1_se"], record["lag"] = math.nan, math.nan, ""
            record["lag_fails"] = 0
            if variant == LIVE:
                r = restart[_num(restart, "n_obs") == n_obs].set_index("seed")
                live = a.set_index("seed")
                paired = live.index.intersection(r.index)
                diff = _num(live.loc[paired], "w1_max") - _num(r.loc[paired], "w1_max")
                record["lag_w1"], record["lag_w1_se"] = stats.mean_se(diff)
                record["lag"] = beyond_noise(record["lag_w1"], record["lag_w1_se"])
                record["lag_fails"] = int(((live.loc[paired, "verdict"].astype(str) != "pass")
                                           & (r.loc[paired, "verdict"].astype(str) == "pass")
                                           ).sum()) if len(paired) else 0
            out.append(record)
    return pd.DataFrame(out)


def _arm_sentence(g: pd.DataFrame) -> str:
    r = g.iloc[0]
    n_pass, n_all = int(g["n_pass"].sum()), int(g["n_seeds"].sum())
    lo, hi = stats.wilson(n_pass, n_all)
    failing = [int(n) for n, k, s in zip(g["n_obs"], g["n_pass"], g["n_seeds"], strict=True)
               if k < s]
    text = (f"{r['arm']}: within the noise after every batch for {int(r['seeds_all_pass'])} of "
            f"{int(r['stream_seeds'])} seeds ({n_pass} of {n_all} fits pass, "
            f"{stats.fmt(n_pass / n_all if n_all else math.nan)} [95% Wilson "
            f"{stats.fmt(lo, 2)}-{stats.fmt(hi, 2)}]), at a cost over the {len(g)} batches of "
            f"{stats.fmt(r['stream_grad_evals'])} gradient evaluations and "
            f"{stats.fmt(r['stream_run_s'])} s run time per seed (median; compile apart)")
    if failing:
        text += f"; not every seed passes after {', '.join(map(str, failing))} observations"
    if g["n_failed"].sum():
        text += f"; {int(g['n_failed'].sum())} failed runs"
    return text


def _lag_sentence(g: pd.DataFrame) -> str:
    r = g.iloc[0]
    lags = [int(n) for n, f in zip(g["n_obs"], g["lag"], strict=True) if f == LAGS]
    ahead = [int(n) for n, f in zip(g["n_obs"], g["lag"], strict=True) if f == AHEAD]
    costly = [int(n) for n, f in zip(g["n_obs"], g["lag_fails"], strict=True) if f]
    if (g["lag"] == UNDECIDED).all():
        text = (f"{r['method']}: one seed (or no paired seeds), so no seed noise to judge live "
                "SVI's lag behind the restart against")
    else:
        worst = g.loc[g["lag_w1"].idxmax()] if g["lag_w1"].notna().any() else r
        text = (f"{r['method']}: live SVI's W1 exceeds the restart's beyond twice the seed "
                + (f"noise at {', '.join(map(str, lags))} observations seen" if lags
                   else "noise after no batch")
                + (f", is below it at {', '.join(map(str, ahead))}" if ahead else "")
                + f"; the largest lag, {stats.pm(worst['lag_w1'], worst['lag_w1_se'])} reference "
                f"sd, after {int(worst['n_obs'])} observations")
    if costly:
        text += (f"; live fails the verdict where the restart passes after "
                 f"{', '.join(map(str, costly))} observations (some seed)")
    return text


def answer(derived: pd.DataFrame) -> str:
    """Per arm: seeds within the noise after every batch and the stream's cost; then, per
    guide, where live SVI's lag behind the restart costs it agreement."""
    if derived.empty:
        return "No runs of this study are in the results."
    arms = [g for _, g in derived.groupby("arm", sort=False)]
    ok = [g.iloc[0] for g in arms if g.iloc[0]["seeds_all_pass"] == g.iloc[0]["stream_seeds"]
          and np.isfinite(g.iloc[0]["stream_grad_evals"])]
    lead = ("Within the noise of the exact posterior after every batch, the cheapest arm is "
            + (f"{min(ok, key=lambda r: r['stream_grad_evals'])['arm']} by gradient evaluations "
               f"and {min(ok, key=lambda r: r['stream_run_s'])['arm']} by run time"
               if ok else "none: no arm passes after every batch on every seed") + ".")
    live = derived[derived["variant"] == LIVE]
    keeps_up = [str(r["method"]) for _, r in live.drop_duplicates("method").iterrows()
                if r["seeds_all_pass"] == r["stream_seeds"]]
    agree = (f"live SVI ({', '.join(keeps_up)}) stays within the noise after every batch, so the "
             "data agree that it can follow the data as they arrive" if keeps_up else
             "no live SVI run stays within the noise after every batch, so the data do not "
             "show it following the data as they arrive")
    parts = [f'The document (000): "{QUOTE}"; {agree}.', lead,
             *(_arm_sentence(g) + "." for g in arms)]
    for _, g in live.groupby("method", sort=False):
        parts.append(_lag_sentence(g) + ".")
    return " ".join(parts)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """W1 after each batch for every arm with the noise floor; the gradient evaluations each
    batch cost."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    styles = {LIVE: "-o", RESTART: "--s", NUTS_VARIANT: ":^"}
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    methods = list(dict.fromkeys(derived["method"])) if len(derived) else []
    for _, g in (derived.groupby("arm", sort=False) if len(derived) else []):
        r = g.iloc[0]
        color = colors[methods.index(r["method"]) % len(colors)]
        style = styles.get(r["variant"], "-")
        axes[0].plot(g["n_obs"], g["w1_max"], style, color=color, label=r["arm"], ms=4)
        axes[1].plot(g["n_obs"], g["grad_evals"], style, color=color, label=r["arm"], ms=4)
    if len(derived):
        floor = derived.groupby("n_obs")["w1_max_floor"].median()
        axes[0].plot(floor.index, floor.to_numpy(dtype=float), color="0.5", lw=3, alpha=0.6,
                     label="noise floor")
    axes[0].set(ylabel="W1 to exact (max, ref sd)", yscale="log",
                title="data arriving during the run, dirichlet_categorical")
    axes[1].set(xlabel="observations seen", ylabel="gradient evaluations this batch",
                yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
