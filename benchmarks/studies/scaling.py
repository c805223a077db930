"""``scaling`` (001, "SVI Vs MCMC In High Dimensions"): does SVI's advantage over NUTS grow with
dimension, and at what dimension does each guide stop agreeing with the reference?

The document fits its hierarchical regression at J = 8 groups (D = 2J + 4 = 20) and finds SVI
faster than NUTS. Here J runs over powers of two, every size with its own exact reference (the
model's collapsed sampler: the two scales by quadrature, the rest Gaussian), and the run time of
each method is fitted as a power of D (a log-log slope with its standard error,
``scipy.stats.linregress``). SVI's advantage grows with D when NUTS's slope exceeds the guide's
by more than t(m - 2) times their combined standard error (``stats.decide``; m the fewer sizes of
the two fits, so the degrees of freedom are those of the less certain slope).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

MODEL = "hierarchical_linreg"
METHODS = (NUTS, "autodiagonalnormal", "automvn", "autoiaf")


def _sizes(groups: tuple[int, ...]) -> tuple[Variant, ...]:
    return tuple(Variant(f"n_groups_{j}", {"n_groups": j}, sizes={MODEL: {"n_groups": j}})
                 for j in groups)


SCOPES = {
    "smoke": Scope((MODEL,), (NUTS, "autodiagonalnormal"), 2, _sizes((2, 3, 4))),
    "quick": Scope((MODEL,), METHODS, 3, _sizes((2, 4, 8, 16, 32, 64))),
    "paper": Scope((MODEL,), METHODS, 3, _sizes((2, 4, 8, 16, 32, 64, 128, 256))),
}


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (method, n_groups): latent dimension, times, gradient evaluations, NUTS ESS
    per second and agreement (medians over ok seeds), plus each method's log-log slope of run
    time and of wall time against D with standard errors (the same on every row of a method)."""
    out = []
    for (method, groups), group in rows.groupby(["method", "n_groups"], sort=True):
        ok = group[group["status"] == "ok"]
        out.append({"method": method, "n_groups": int(groups),
                    "latent_dim": stats.median(group, "latent_dim"),
                    **stats.group_summary(group),
                    "ess_per_second": stats.median(ok, "ess_per_second")})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    for column, name in (("run_s", "run"), ("wall_s", "wall"), ("grad_evals", "grad")):
        fits = {m: stats.loglog_slope(sub["latent_dim"], sub[column])
                for m, sub in table.groupby("method")}
        table[f"{name}_slope"] = table["method"].map(lambda m, f=fits: f[m][0])
        table[f"{name}_slope_se"] = table["method"].map(lambda m, f=fits: f[m][1])
        table[f"{name}_slope_points"] = table["method"].map(lambda m, f=fits: f[m][2])
    return table


def _first_failure(sub: pd.DataFrame) -> str:
    """"agrees at every D up to X" or "stops agreeing at D = X" (first fail verdict), judged only
    at sizes whose reference passed its gates (a verdict against a failed reference says nothing),
    naming the sizes left out, the first D at which a seed's run failed outright, and the verdict
    at every judged D (a method can fail first and recover: NUTS on the centred model at small J)."""
    sub = sub.sort_values("latent_dim")
    with_verdict = sub[sub["verdict"] != ""]
    judged = with_verdict[with_verdict["reference_ok"].astype(bool)]
    unjudged = with_verdict[~with_verdict["reference_ok"].astype(bool)]
    fails = judged[judged["verdict"] == "fail"]
    broken = sub[sub["n_failed"] > 0]
    crash = (f" and its runs fail from D = {int(broken['latent_dim'].iloc[0])} "
             f"({int(broken['n_failed'].sum())} failed runs)" if len(broken) else "")
    skipped = (" (not judged at D = " + ", ".join(str(int(d)) for d in unjudged["latent_dim"])
               + ": reference failed its gates)" if len(unjudged) else "")
    if judged.empty:
        return "was never judged against a passing reference" + skipped + crash
    by_d = (" (verdict by D: " + ", ".join(f"{int(d)} {v}" for d, v in
                                           zip(judged["latent_dim"], judged["verdict"],
                                               strict=True)) + ")")
    if fails.empty:
        return (f"agrees (no fail verdict) at every judged D up to "
                f"{int(judged['latent_dim'].max())}" + skipped + crash + by_d)
    return f"stops agreeing at D = {int(fails['latent_dim'].iloc[0])}" + skipped + crash + by_d


def answer(derived: pd.DataFrame) -> str:
    """The slopes, whether SVI's advantage grows (``stats.decide`` on the slope gap), and the
    first dimension at which each guide fails its agreement verdict."""
    if derived.empty:
        return "No runs of this study are in the results."
    slopes = derived.drop_duplicates("method").set_index("method")
    parts = [f"{m} D^{stats.pm(r.run_slope, r.run_slope_se, 2)}" for m, r in slopes.iterrows()]
    text = "Run time grows as " + ", ".join(parts)
    if NUTS in slopes.index and "grad_slope" in slopes.columns:
        nuts = slopes.loc[NUTS]
        text += (f" (NUTS gradient evaluations, free of timing noise, grow as "
                 f"D^{stats.pm(nuts.grad_slope, nuts.grad_slope_se, 2)}; SVI's are fixed by "
                 "its settings)")
    if NUTS in slopes.index:
        nuts = slopes.loc[NUTS]
        claims = []
        for m, r in slopes.drop(index=NUTS).iterrows():
            diff = nuts.run_slope - r.run_slope
            se = math.hypot(nuts.run_slope_se, r.run_slope_se)
            df = min(nuts.get("run_slope_points", math.nan), r.get("run_slope_points", math.nan)) - 2
            decision = stats.decide(diff, se, df)
            gap = f"slope gap {stats.pm(diff, se, 2)}, {stats.rule(df)}"
            if not np.isfinite(diff):
                claims.append(f"{m}: not measurable")
            elif decision is None:
                claims.append(f"{m}: slope gap {stats.fmt(diff, 2)} with no error estimate")
            else:
                word = {1: "grows", -1: "shrinks", 0: "not resolved"}[decision]
                claims.append(f"{m}: {word} ({gap})")
        text += ". SVI's run-time advantage over NUTS with dimension: " + "; ".join(claims)
    guides = [f"{m} {_first_failure(sub)}" for m, sub in derived.groupby("method")]
    text += ". Agreement: " + "; ".join(guides) + "."
    if not derived.loc[derived["verdict"] != "", "reference_ok"].all():
        text += (" Sizes whose reference failed its gates are left out of these verdicts: "
                 "there the reference itself is not trusted.")
    return text + stats.coverage_note(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Run time and wall time against D (log-log) per method, with the fitted power laws."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for method, sub in derived.groupby("method", sort=True):
        sub = sub.sort_values("latent_dim")
        for ax, column, name in ((axes[0], "run_s", "run"), (axes[1], "wall_s", "wall")):
            slope = sub[f"{name}_slope"].iloc[0]
            fails = (sub["verdict"] == "fail") & sub["reference_ok"].astype(bool)
            line = ax.plot(sub["latent_dim"], sub[column], "o-",
                           label=f"{method} (slope {stats.pm(slope, sub[f'{name}_slope_se'].iloc[0], 2)})")[0]
            ax.plot(sub["latent_dim"][fails], sub[column][fails], "x", ms=10,
                    color=line.get_color())
    axes[0].set(xscale="log", yscale="log", xlabel="latent dimension D", ylabel="run time (s)",
                title="run time (compile excluded), median over seeds")
    axes[1].set(xscale="log", yscale="log", xlabel="latent dimension D",
                ylabel="wall time (s)", title="compile + run")
    for ax in axes:
        stats.log_ticks(ax, derived["latent_dim"])
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


STUDY = Study(
    name="scaling",
    question="Does SVI's advantage over NUTS grow with dimension, and at what D does each guide "
             "stop agreeing?",
    document="001",
    section="SVI Vs MCMC In High Dimensions",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="hierarchical_linreg at the study's sizes (D = 2 n_groups + 4): median "
                   "run time (left) and wall time (right) against D on log-log axes; crosses "
                   "mark sizes where the method's agreement verdict is fail against a reference "
                   "that passed its gates; the legend gives each method's fitted slope.",
)
