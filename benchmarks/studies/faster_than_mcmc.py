"""``faster_than_mcmc`` (001, "A Practical Example: Linear Regression With Outliers"): is SVI 2-3x
faster than NUTS with good agreement, and does the diagonal guide miss the slope-intercept
correlation?

The document times NUTS (1000 + 20000 draws, one chain) and three guides (AutoMultivariateNormal,
AutoDiagonalNormal and its hand-written independent guide; Adam 1e-3, 10000 steps x 8
particles) on ``linreg_outliers`` with ``%time``, compile included. The paper profile's
settings are the document's already (``numpyro_guides.OVERRIDES``, ``nuts.DEFAULTS``), so the
paper variant overrides nothing; smoke and quick run smaller budgets. Every seed is its own
program, so the ratios NUTS time / guide time, compile included and apart, have a spread over
seeds (``timing``). A ratio agrees with "2-3x" when its 95% interval (t over seeds) meets
[2, 3]. A guide misses a correlation the full-rank guide catches when its ``corr_err_max``
exceeds AutoMultivariateNormal's for the same seed by more than t(seeds - 1) standard errors,
Bonferroni-corrected over the guides compared (``stats.decide``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats, timing
from svi_bench.benchmarks.studies.base import Scope, Study, Variant

MODEL = "linreg_outliers"
FULL_RANK, DIAGONAL, MANUAL = "automvn", "autodiagonalnormal", "manual:independent"
METHODS = (NUTS, FULL_RANK, DIAGONAL, MANUAL)
#: The document's ``%time`` wall times in seconds (001), quoted as its claim. Its variable names
#: are swapped: ``guide_linreg_diag`` is the AutoMultivariateNormal (5.67 s).
DOCUMENT_WALL_S: dict[str, float] = {NUTS: 11.3, FULL_RANK: 5.67, DIAGONAL: 3.98, MANUAL: 8.66}
CLAIM = (2.0, 3.0)
"""The document's "factor of 2-3"."""
PAIR = ("theta", "b_perp")
"""The correlation the document says the independent guides miss."""
QUOTE = ("Runtimes are betteer than MCMC by a factor of 2-3 even in a cheap case where fixed "
         "costs like compilation are a major fraction")

DOCUMENT_VARIANT = Variant("document", {"budget": "document"})
PROFILE_VARIANT = Variant("profile", {"budget": "profile"})
SCOPES = {
    "smoke": Scope((MODEL,), (NUTS, DIAGONAL), 2, (PROFILE_VARIANT,)),
    "quick": Scope((MODEL,), METHODS, 4, (PROFILE_VARIANT,)),
    "paper": Scope((MODEL,), METHODS, 5, (DOCUMENT_VARIANT,)),
}


def _num(rows: pd.DataFrame, column: str) -> pd.Series:
    return pd.to_numeric(rows.get(column, pd.Series(math.nan, index=rows.index)),
                         errors="coerce").astype(float)


def _per_seed(rows: pd.DataFrame, column: str) -> pd.Series:
    ok = rows[rows["status"] == "ok"]
    return pd.Series(_num(ok, column).to_numpy(), index=ok["seed"].to_numpy()).groupby(
        level=0).first()


def _gap(rows: pd.DataFrame, base: pd.DataFrame, column: str) -> tuple[float, float, int]:
    """(mean, se, seeds) of rows[column] - base[column], paired by seed."""
    diff = (_per_seed(rows, column) - _per_seed(base, column)).dropna()
    mean, se = stats.mean_se(diff)
    return mean, se, int(len(diff))


def _mode(values: pd.Series) -> str:
    v = values.dropna().astype(str)
    v = v[v != ""]
    return str(v.mode().iloc[0]) if len(v) else ""


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method: times and their ratio to NUTS (``timing.versus_nuts``), the
    document's wall time, agreement (W1 and the correlation error, mean ± se over seeds, with
    their noise floors, the pair most often worst, the verdicts) and each guide's W1 and
    correlation error minus the full-rank guide's, paired by seed."""
    out = []
    base = rows[rows["method"] == FULL_RANK]
    for method, group in rows.groupby("method", sort=True):
        ok = group[group["status"] == "ok"]
        w1, w1_se = stats.mean_se(_num(ok, "w1_max"))
        corr, corr_se = stats.mean_se(_num(ok, "corr_err_max"))
        entry = {"method": method, **stats.group_summary(group), "failure": stats.first_failure(group),
                 "w1_max": w1, "w1_max_se": w1_se,
                 "w1_max_floor": stats.median(ok, "w1_max_floor"),
                 "corr_err_max": corr, "corr_err_max_se": corr_se,
                 "corr_err_max_floor": stats.median(ok, "corr_err_max_floor"),
                 "corr_worst_pair": _mode(ok.get("corr_worst_pair", pd.Series(dtype=str))),
                 "verdict_marginal": stats.worst_verdict(list(ok.get("verdict_marginal", []))),
                 "verdict_joint": stats.worst_verdict(list(ok.get("verdict_joint", []))),
                 "document_wall_s": DOCUMENT_WALL_S.get(method, math.nan)}
        for column, name in (("w1_max", "w1_gap"), ("corr_err_max", "corr_gap")):
            mean, se, n = _gap(group, base, column) if len(base) else (math.nan, math.nan, 0)
            entry.update({name: mean, f"{name}_se": se, f"{name}_n": n})
        out.append(entry)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    table = table.merge(timing.versus_nuts(rows), on="method", how="left")
    rank = {m: i for i, m in enumerate(METHODS)}  # the document's order
    return table.sort_values("method", key=lambda s: s.map(lambda m: rank.get(m, len(rank))))


def claim_check(mean: float, se: float, n: int) -> str:
    """Where a ratio stands against the claimed 2-3x: from its 95% interval, or from the point
    alone (said so) when it was timed once."""
    lo, hi = timing.interval(mean, se, n)
    if not np.isfinite(mean):
        return "not measured"
    if not np.isfinite(lo):
        inside = CLAIM[0] <= mean <= CLAIM[1]
        return f"{'inside' if inside else 'outside'} 2-3x as a point, undecided without a spread"
    if lo >= CLAIM[0] and hi <= CLAIM[1]:
        return "within 2-3x"
    if hi < 1:
        return "slower than NUTS"
    if hi < CLAIM[0]:
        return "below 2x"
    if lo > CLAIM[1]:
        return "above 3x"
    return "consistent with 2-3x"


AGREES = ("within 2-3x", "consistent with 2-3x")


def _correlation(table: pd.DataFrame) -> str:
    """Which guides miss a correlation the full-rank guide catches (paired corr_err_max gaps,
    Bonferroni over the guides compared), and whether the pair is the document's."""
    others = table[~table["method"].isin((NUTS, FULL_RANK))]
    if FULL_RANK not in set(table["method"]) or others.empty:
        return "No full-rank guide to compare the correlation error with."
    tests = len(others)
    parts = []
    for _, r in others.iterrows():
        n = int(r["corr_gap_n"])
        decision = stats.decide(r["corr_gap"], r["corr_gap_se"], n - 1, tests)
        pair = r["corr_worst_pair"]
        named = all(p in pair for p in PAIR)
        word = {1: "misses a correlation automvn catches", -1: "catches correlation better than "
                "automvn", 0: "is not shown to differ from automvn", None: "is undecided"}[decision]
        corr = stats.pm(r["corr_err_max"], r["corr_err_max_se"], 2)
        whose = ", the document's" if named else ""
        parts.append(f"{r['method']} {word} (corr_err_max {corr}, floor "
                     f"{stats.fmt(r['corr_err_max_floor'], 2)}, gap "
                     f"{stats.pm(r['corr_gap'], r['corr_gap_se'], 2)}; worst pair {pair or 'n/a'}"
                     f"{whose}; joint verdict {r['verdict_joint'] or 'none'})")
    rule = stats.rule(float(others["corr_gap_n"].min()) - 1, tests)
    return "Correlation (gap over automvn, paired by seed, " + rule + "): " + "; ".join(parts) + "."


def answer(derived: pd.DataFrame) -> str:
    """Each guide's NUTS/guide time ratio with compile and without, against the claimed 2-3x and
    the document's own times; agreement; the correlation the independent guides miss."""
    if derived.empty:
        return "No runs of this study are in the results."
    table = derived[derived["n_ok"] > 0].set_index("method", drop=False)
    guides = table[table["method"] != NUTS]
    if NUTS not in table.index:
        return ("NUTS has no finished run: no ratio to it." + stats.unfinished(derived)
                + stats.coverage_note(derived))
    nuts = table.loc[NUTS]
    doc = ", ".join(f"{m} {stats.fmt(DOCUMENT_WALL_S[m])} s" for m in METHODS)
    speed = []
    for m, r in guides.iterrows():
        check = claim_check(r["speedup_wall"], r["speedup_wall_se"], int(r["speedup_wall_n"]))
        cold = "" if r["compile_cold"] else ", its compile served by a cache"
        speed.append(f"{m} {stats.fmt(r['wall_once_s'])} s (compile "
                     f"{stats.fmt(r['compile_once_s'])} s{cold}): "
                     f"{timing.row_ratio(r, 'speedup_wall')} with compile, {check}; "
                     f"{timing.row_ratio(r, 'speedup_run')} run alone")
    off = [m for m, r in guides.iterrows() if claim_check(
        r["speedup_wall"], r["speedup_wall_se"], int(r["speedup_wall_n"])) not in AGREES]
    verdicts = "; ".join(f"{m} W1 {stats.pm(r['w1_max'], r['w1_max_se'], 2)} (floor "
                         f"{stats.fmt(r['w1_max_floor'], 2)}) {r['verdict'] or 'not judged'}"
                         f" (marginal {r['verdict_marginal'] or '-'}, joint "
                         f"{r['verdict_joint'] or '-'})" for m, r in table.iterrows())
    w1 = ""
    if DIAGONAL in table.index and FULL_RANK in table.index:
        r = table.loc[DIAGONAL]
        n = int(r["w1_gap_n"])
        d = stats.decide(r["w1_gap"], r["w1_gap_se"], n - 1)
        word = {1: "worse than", -1: "better than", 0: "not shown to differ from",
                None: "undecided against"}[d]
        w1 = (f" The diagonal guide's W1 is {word} the full-rank's (gap "
              f"{stats.pm(r['w1_gap'], r['w1_gap_se'], 2)}, {stats.rule(n - 1)}); the document "
              "says they 'perform about as well'.")
    text = (f'The document (001): "{QUOTE}" (its %time: {doc}); '
            f"{'the data do not agree for ' + ', '.join(off) if off else 'the data agree'}. Here "
            f"NUTS takes {stats.fmt(nuts['wall_once_s'])} s per seed (compile "
            f"{stats.fmt(nuts['compile_once_s'])} s, run {stats.fmt(nuts['run_once_s'])} s); "
            f"NUTS time / guide time: " + "; ".join(speed) + f". Agreement: {verdicts}.{w1} "
            + _correlation(table))
    return text + timing.caveats(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Compile and run time per method beside the document's %time; NUTS/guide ratios against the
    claimed 2-3x band; correlation error and W1 per guide against their noise floors."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    table = derived.set_index("method", drop=False)
    x = np.arange(len(table))
    axes[0].bar(x - 0.2, table["compile_once_s"], 0.4, label="here: compile")
    axes[0].bar(x - 0.2, table["run_once_s"], 0.4, bottom=table["compile_once_s"],
                label="here: run (median seed)")
    axes[0].bar(x + 0.2, table["document_wall_s"], 0.4, label="document: %time")
    axes[0].set(xticks=x, ylabel="seconds", title="wall time per seed")
    axes[0].set_xticklabels(table["method"], rotation=30, ha="right", fontsize=8)
    guides = table[table["method"] != NUTS]
    g = np.arange(len(guides))
    for shift, column, label in ((-0.1, "speedup_wall", "compile included"),
                                 (0.1, "speedup_run", "run alone")):
        t = [timing.interval(m, s, int(n)) for m, s, n in
             zip(guides[column], guides[f"{column}_se"], guides[f"{column}_n"], strict=True)]
        err = np.array([[m - lo, hi - m] if np.isfinite(lo) else [0.0, 0.0]
                        for m, (lo, hi) in zip(guides[column], t, strict=True)]).T.reshape(2, -1)
        axes[1].errorbar(g + shift, guides[column], yerr=err, fmt="o", capsize=3, label=label)
    axes[1].plot(g, [DOCUMENT_WALL_S[NUTS] / DOCUMENT_WALL_S.get(m, math.nan)
                     for m in guides["method"]], "x", color="k", ms=9, label="document")
    axes[1].axhspan(*CLAIM, color="g", alpha=0.15, label="claimed 2-3x")
    axes[1].axhline(1.0, color="k", lw=0.8, ls="--")
    axes[1].set(xticks=g, ylabel="NUTS time / guide time", title="speed-up over NUTS (95% t)")
    axes[1].set_xticklabels(guides["method"], rotation=30, ha="right", fontsize=8)
    for shift, column in ((-0.1, "corr_err_max"), (0.1, "w1_max")):
        axes[2].errorbar(g + shift, guides[column], yerr=guides[f"{column}_se"].fillna(0.0),
                         fmt="o", capsize=3, label=column)
        axes[2].plot(g + shift, guides[f"{column}_floor"], "_", ms=14, color="k")
    axes[2].set(xticks=g, ylabel="error (correlation / reference sd)",
                title="agreement (bars: se over seeds; dashes: noise floors)")
    axes[2].set_xticklabels(guides["method"], rotation=30, ha="right", fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


STUDY = Study(
    name="faster_than_mcmc",
    question="Is SVI 2-3x faster than NUTS on the linear regression with outliers, compile "
             "included, with good agreement, and does the diagonal guide miss the "
             "slope-intercept correlation?",
    document="001",
    section="A Practical Example: Linear Regression With Outliers",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="linreg_outliers. Left: each method's compile plus its median seed's run "
                   "beside the document's %time. Middle: NUTS time over the guide's, paired by "
                   "seed, with compile and without (bars: 95% t interval over seeds; none when "
                   "timed once), the claimed 2-3x band shaded, the document's own ratios as "
                   "crosses. Right: each guide's largest correlation error and marginal W1 "
                   "(mean ± se over seeds) with their noise floors.",
    seed_programs=True,
)
