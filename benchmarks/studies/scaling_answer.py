"""The ``scaling`` study's table, answer and figure: pure functions of its rows.

The study runs the document's centred hierarchical regression and its non-centred form (one
posterior, one data set per size, one exact reference through the change of variables). Per
(parameterisation, method, size) the table holds times, gradient evaluations, agreement and
NUTS's divergences; per (parameterisation, method) the log-log slopes of run time, wall time and
gradient evaluations against D with their standard errors (``stats.loglog_slope``). SVI's
advantage grows with D when NUTS's run-time slope exceeds the guide's by more than t(m - 2) times
their combined standard error (``stats.decide``; m the fewer sizes of the two fits). NUTS
"works" at a size when none of its runs there diverged or failed and its agreement verdict is not
fail against a reference that passed its gates. The answer to the document is read on the
parameterisation where NUTS works at every size (else over the sizes where it works, on the one
with most of them, if there are three), its guides tested together (Bonferroni over them: the
claim holds when any guide's advantage grows): against a NUTS that diverges, SVI's advantage is
measured against a run that has not sampled the posterior.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats

CENTRED, NONCENTRED = "hierarchical_linreg", "hierarchical_linreg_nc"
LABEL = {CENTRED: "centred model (the document's)", NONCENTRED: "non-centred model"}
SHORT = {CENTRED: "centred", NONCENTRED: "non-centred"}
DOCUMENT_D = 20
"""The document's dimension: J = 8 groups, D = 2J + 4."""
QUOTE = ("SVI converges _extremely_ fast, in far less itterations and, even with my absurd "
         "particle count, in a markedly shorter run-time than MCMC")
QUESTION = "how does this scale as we climb into the dozens or hundreds of parameters?"
GROWS, SHRINKS, UNRESOLVED = "grows", "shrinks", "not resolved"
MIN_SIZES = 3
"""Sizes a slope needs for a standard error (``stats.loglog_slope``: one residual left)."""
SLOPES = (("run_s", "run"), ("wall_s", "wall"), ("grad_evals", "grad"))


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, n_groups): latent dimension, times, gradient evaluations,
    NUTS ESS per second, divergences (median per ok seed, and how many seeds had any) and
    agreement (medians over ok seeds), plus each (model, method)'s log-log slopes of run time,
    wall time and gradient evaluations against D with standard errors and point counts (the same
    on every row of a (model, method))."""
    out = []
    for (model, method, groups), group in rows.groupby(["model", "method", "n_groups"],
                                                       sort=True):
        ok = group[group["status"] == "ok"]
        divergences = pd.to_numeric(ok.get("divergences", pd.Series(dtype=float)),
                                    errors="coerce").dropna()
        out.append({"model": model, "method": method, "n_groups": int(groups),
                    "latent_dim": stats.median(group, "latent_dim"),
                    **stats.group_summary(group),
                    "ess_per_second": stats.median(ok, "ess_per_second"),
                    "divergences": float(divergences.median()) if len(divergences) else math.nan,
                    "n_divergent_seeds": int((divergences > 0).sum())})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    for column, name in SLOPES:
        fits = {key: stats.loglog_slope(sub["latent_dim"], sub[column])
                for key, sub in table.groupby(["model", "method"])}
        keys = list(zip(table["model"], table["method"], strict=True))
        for i, suffix in enumerate(("", "_se", "_points")):
            table[f"{name}_slope{suffix}"] = [fits[k][i] for k in keys]
    return table


def _slope_gap(slower: tuple, faster: tuple, tests: int = 1) -> tuple[int | None, str]:
    """The decision on one run-time slope minus another, each (slope, se, points) (+1: the first
    grows faster beyond the noise; Bonferroni over ``tests`` comparisons made together), and its
    text: "slope gap d ± se, <the rule>"."""
    diff = slower[0] - faster[0]
    se = math.hypot(slower[1], faster[1])
    df = min(slower[2], faster[2]) - 2
    if not np.isfinite(diff):
        return None, "not measurable"
    decision = stats.decide(diff, se, df, tests)
    if decision is None:
        return None, f"slope gap {stats.fmt(diff, 2)} with no error estimate"
    return decision, f"slope gap {stats.pm(diff, se, 2)}, {stats.rule(df, tests)}"


def advantage(sub: pd.DataFrame, dims: Sequence[float] | None = None, together: bool = False
              ) -> dict[str, tuple[int | None, str]]:
    """Per guide of one parameterisation: the decision on whether SVI's run-time advantage over
    NUTS grows with D (run-time slopes fitted over ``dims``, every size when None), with its
    text ({} without NUTS). ``together``: the guides are one claim ("SVI's advantage grows"
    when any does), so each test is Bonferroni-corrected over the guides, not best-of-k."""
    if dims is not None:
        sub = sub[sub["latent_dim"].isin(list(dims))]
    fits = {m: stats.loglog_slope(g["latent_dim"], g["run_s"]) for m, g in sub.groupby("method")}
    if NUTS not in fits:
        return {}
    tests = len(fits) - 1 if together else 1
    out = {}
    for method, fit in fits.items():
        if method == NUTS:
            continue
        decision, gap = _slope_gap(fits[NUTS], fit, tests)
        word = {1: GROWS, -1: SHRINKS, 0: UNRESOLVED}.get(decision)
        out[method] = (decision, f"{word} ({gap})" if word else gap)
    return out


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


def nuts_working_dims(sub: pd.DataFrame) -> list[float]:
    """The dimensions at which NUTS works on one parameterisation: judged against a reference
    that passed its gates, no fail verdict, no run diverged and none failed."""
    nuts = sub[sub["method"] == NUTS]
    works = ((nuts["verdict"] != "") & nuts["reference_ok"].astype(bool)
             & (nuts["verdict"] != "fail") & (nuts["n_divergent_seeds"] == 0)
             & (nuts["n_failed"] == 0))
    return sorted(float(d) for d in nuts.loc[works, "latent_dim"])


def _dims(dims: Sequence[float]) -> str:
    return ", ".join(stats.fmt(d) for d in dims) or "none"


def _divergence_text(sub: pd.DataFrame) -> str:
    nuts = sub[sub["method"] == NUTS].sort_values("latent_dim")
    if nuts.empty:
        return ""
    seeds = int(nuts["n_ok"].sum())
    divergent = int(nuts["n_divergent_seeds"].sum())
    by_d = ", ".join(f"{int(d)} {stats.fmt(v)}" for d, v in
                     zip(nuts["latent_dim"], nuts["divergences"], strict=True))
    return (f"NUTS diverged in {divergent} of {seeds} ok runs (median divergences per run by D: "
            f"{by_d})")


def _model_text(model: str, sub: pd.DataFrame) -> str:
    """Run-time slopes, SVI's advantage, NUTS's divergences and each method's agreement on one
    parameterisation."""
    slopes = sub.drop_duplicates("method").set_index("method")
    parts = [f"{m} D^{stats.pm(r.run_slope, r.run_slope_se, 2)}" for m, r in slopes.iterrows()]
    text = f"On the {LABEL.get(model, model)}, run time grows as " + ", ".join(parts)
    if NUTS in slopes.index:
        nuts = slopes.loc[NUTS]
        text += (f" (NUTS gradient evaluations, free of timing noise, grow as "
                 f"D^{stats.pm(nuts.grad_slope, nuts.grad_slope_se, 2)}; SVI's are fixed by "
                 "its settings)")
        claims = [f"{m}: {t}" for m, (_, t) in advantage(sub).items()]
        if claims:
            text += ". SVI's run-time advantage over NUTS with dimension: " + "; ".join(claims)
        text += ". " + _divergence_text(sub)
    guides = [f"{m} {_first_failure(g)}" for m, g in sub.groupby("method")]
    return text + ". Agreement: " + "; ".join(guides) + "."


def _document_text(derived: pd.DataFrame) -> str:
    """The document's claim, where NUTS works (per parameterisation, the sizes), and whether the
    data agree there: read on the parameterisation where NUTS works at every size (the
    non-centred first), else over the sizes where it works on the one with most of them, if
    those are enough (3) for a slope with its noise."""
    lead = (f'The document (001) fits the centred model at D = {DOCUMENT_D} and finds "{QUOTE}", '
            f'then asks "{QUESTION}"')
    models = [m for m in (NONCENTRED, CENTRED) if m in set(derived["model"])]
    models += sorted(set(derived["model"]) - set(models))
    with_nuts = [m for m in models if (derived.loc[derived["model"] == m, "method"] == NUTS).any()]
    if not with_nuts:
        return f"{lead}. NUTS was not run, so the data cannot answer it."
    working = {m: nuts_working_dims(derived[derived["model"] == m]) for m in with_nuts}
    every = {m: sorted(derived.loc[derived["model"] == m, "latent_dim"].unique())
             for m in with_nuts}
    where = "; ".join(f"on the {SHORT.get(m, m)} model at D = {_dims(working[m])} of "
                      f"{_dims(every[m])}" for m in with_nuts)
    where = f"NUTS works (judged, no fail verdict, no divergent run) {where}"
    model = max(with_nuts, key=lambda m: (len(working[m]) == len(every[m]), len(working[m])))
    dims = working[model]
    if len(dims) < MIN_SIZES:
        return (f"{lead}. {where}: too few sizes (fewer than {MIN_SIZES}) to fit NUTS's slope with "
                "its noise against a NUTS that works, so the data cannot answer the question.")
    scope = (f"on the {SHORT.get(model, model)} model" if len(dims) == len(every[model]) else
             f"on the {SHORT.get(model, model)} model over those {len(dims)} sizes")
    decisions = advantage(derived[derived["model"] == model], dims, together=True)
    grows = [m for m, (d, _) in decisions.items() if d == 1]
    shrinks = [m for m, (d, _) in decisions.items() if d == -1]
    if grows:
        verdict = (f"{scope} SVI's run-time advantage grows with D for {', '.join(grows)} of "
                   f"{len(decisions)} guides beyond the noise: the data agree")
    elif shrinks:
        verdict = (f"{scope} SVI's run-time advantage shrinks with D for {', '.join(shrinks)} "
                   "and grows for none beyond the noise: the data disagree")
    else:
        verdict = (f"{scope} no guide's run-time advantage over NUTS grows or shrinks with D "
                   "beyond the noise: the data do not show the claimed growth")
    details = "; ".join(f"{m}: {t}" for m, (_, t) in decisions.items())
    return f"{lead}. {where}. {verdict[0].upper()}{verdict[1:]} ({details})."


def answer(derived: pd.DataFrame) -> str:
    """The document's claim read where NUTS works, then per parameterisation the slopes, whether
    SVI's advantage grows (``stats.decide`` on the slope gap), NUTS's divergences and the first
    dimension at which each method fails its agreement verdict."""
    ran = derived[pd.to_numeric(derived.get("latent_dim"), errors="coerce").notna()]
    if ran.empty:  # no rows, or only planned runs missing from the results
        return "No runs of this study are in the results." + stats.coverage_note(derived)
    parts = [_document_text(ran)]
    order = [m for m in (CENTRED, NONCENTRED) if m in set(ran["model"])]
    order += sorted(set(ran["model"]) - set(order))
    parts += [_model_text(m, ran[ran["model"] == m]) for m in order]
    text = " ".join(parts)
    if len(order) == 2 and {NUTS} <= set(ran["method"]):
        text += _nuts_between(ran)
    if not ran.loc[ran["verdict"] != "", "reference_ok"].all():
        text += (" Sizes whose reference failed its gates are left out of these verdicts: "
                 "there the reference itself is not trusted.")
    return text + stats.coverage_note(derived)


def _nuts_between(derived: pd.DataFrame) -> str:
    """NUTS's run-time slope on the non-centred model against the centred one (the same rule)."""
    rows = derived[derived["method"] == NUTS].drop_duplicates("model").set_index("model")
    if not {CENTRED, NONCENTRED} <= set(rows.index):
        return ""
    decision, gap = _slope_gap(*(tuple(rows.loc[m, ["run_slope", "run_slope_se",
                                                    "run_slope_points"]])
                                 for m in (CENTRED, NONCENTRED)))
    phrase = {1: "more slowly than on the centred one", -1: "faster than on the centred one",
              0: "at a rate not resolved from that on the centred one"}
    if decision is None:
        return f" NUTS's run-time slope, centred minus non-centred: {gap}."
    return (f" On the non-centred model NUTS's run time grows with D {phrase[decision]} "
            f"(centred minus non-centred {gap}).")


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Run time against D (log-log) per method, centred solid and non-centred dashed, with the
    fitted slopes; NUTS's divergences per run against D on each parameterisation; and each
    method's agreement (the headline metric) against D."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    colours = {m: f"C{i}" for i, m in enumerate(sorted(set(derived["method"])))}
    styles = {CENTRED: ("o-", "centred"), NONCENTRED: ("s--", "non-centred")}
    for (model, method), sub in derived.groupby(["model", "method"], sort=True):
        sub = sub.sort_values("latent_dim")
        style, short = styles.get(model, ("^:", model))
        colour = colours[method]
        slope = stats.pm(sub["run_slope"].iloc[0], sub["run_slope_se"].iloc[0], 2)
        axes[0].plot(sub["latent_dim"], sub["run_s"], style, color=colour,
                     label=f"{method}, {short} (slope {slope})")
        fails = (sub["verdict"] == "fail") & sub["reference_ok"].astype(bool)
        axes[0].plot(sub["latent_dim"][fails], sub["run_s"][fails], "x", ms=10, color=colour)
        axes[2].plot(sub["latent_dim"], sub["agreement"], style, color=colour,
                     label=f"{method}, {short}")
        if method == NUTS:
            axes[1].plot(sub["latent_dim"], sub["divergences"], style, color=colour,
                         label=f"NUTS, {short}")
    metric = next((m for m in derived.get("agreement_metric", []) if m), "agreement")
    axes[0].set(xscale="log", yscale="log", xlabel="latent dimension D", ylabel="run time (s)",
                title="run time (compile excluded), median over seeds")
    axes[1].set_yscale("symlog", linthresh=1)
    axes[1].set_ylim(bottom=0)
    axes[1].set(xscale="log", xlabel="latent dimension D",
                ylabel="divergences per run (median)", title="NUTS divergences")
    axes[2].set(xscale="log", yscale="log", xlabel="latent dimension D",
                ylabel=f"{metric} (median)", title="agreement with the exact reference")
    for ax in axes:
        stats.log_ticks(ax, derived["latent_dim"])
        ax.grid(alpha=0.3, which="both")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6)
    fig.tight_layout()
    return fig
