"""The small statistics the studies' answers lean on, each returning its uncertainty with it.

Binomial intervals (Wilson, through SciPy), log-log slopes with their standard error
(``scipy.stats.linregress``), a mean with its standard error, the one decision rule every answer
uses on a difference and its standard error (Student t with the degrees of freedom the seeds
give, Bonferroni over the comparisons made: ``decide``), and how a derived table summarises
the seeds of one group: medians for times and losses, the worst verdict, the headline agreement
metric of the model (marginal W1 in reference sd, or the predictive gap of models judged in
predictive space).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

from svi_bench.benchmarks.scoring.verdict import LEVELS

VERDICT_ORDER = LEVELS  # pass < inconclusive < warn < fail (``scoring.verdict``)
#: Agreement metrics in order of preference: the first one a row has is its headline.
HEADLINE = ("w1_max", "pred_prob_mad")


def wilson(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n; (nan, nan) when n is 0."""
    if n <= 0:
        return math.nan, math.nan
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=confidence,
                                                       method="wilson")
    return float(ci.low), float(ci.high)


def intervals_apart(a: tuple[float, float], b: tuple[float, float]) -> int | None:
    """The rule on two proportions from their intervals (lo, hi), e.g. ``wilson``'s: +1 when
    ``a`` lies wholly above ``b``, -1 wholly below, 0 when they overlap; None when an end is
    not finite (no decision)."""
    if not all(np.isfinite(v) for v in (*a, *b)):
        return None
    return 1 if a[0] > b[1] else -1 if a[1] < b[0] else 0


def loglog_slope(x: Sequence[float], y: Sequence[float]) -> tuple[float, float, int]:
    """(slope, its standard error, points) of log y against log x over the finite positive
    points; slope nan below two points, standard error nan below three (no residual left)."""
    xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(xa) & np.isfinite(ya) & (xa > 0) & (ya > 0)
    xa, ya = xa[keep], ya[keep]
    n = int(len(np.unique(xa)))
    if n < 2:
        return math.nan, math.nan, n
    fit = stats.linregress(np.log(xa), np.log(ya))
    return float(fit.slope), float(fit.stderr) if n >= 3 else math.nan, n


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """(mean, standard error over the values) of the finite values; se nan below two."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return math.nan, math.nan
    se = float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else math.nan
    return float(np.mean(v)), se


CONFIDENCE = 0.95
"""Two-sided confidence of every difference a study calls real."""


def t_multiplier(df: float, tests: int = 1, confidence: float = CONFIDENCE) -> float:
    """Standard errors a difference must exceed to be called one: the two-sided Student-t
    quantile with ``df`` degrees of freedom (a mean over n seeds has n - 1), at the level
    Bonferroni-corrected over ``tests`` comparisons made together; nan below one degree of
    freedom (no estimate of the noise). A fixed 2 is the normal quantile: with 4 seeds it calls
    noise a difference about one time in seven instead of one in twenty."""
    if not (np.isfinite(df) and df >= 1 and tests >= 1):
        return math.nan
    return float(stats.t.ppf(1 - (1 - confidence) / (2 * tests), df))


def decide(diff: float, se: float, df: float, tests: int = 1) -> int | None:
    """+1 when ``diff`` lies above zero by more than ``t_multiplier(df, tests)`` standard errors,
    -1 when below by as much, 0 within; None when undecidable (no finite difference, standard
    error or degrees of freedom)."""
    t = t_multiplier(df, tests)
    if not (np.isfinite(diff) and np.isfinite(se) and np.isfinite(t)):
        return None
    if diff - t * se > 0:
        return 1
    if diff + t * se < 0:
        return -1
    return 0


def rule(df: float, tests: int = 1) -> str:
    """The rule ``decide`` applies, for an answer: "beyond t(3) = 3.18 standard errors at 95%"
    (with the Bonferroni correction named when ``tests`` > 1)."""
    t = t_multiplier(df, tests)
    if not np.isfinite(t):
        return "no decision without an estimate of the noise"
    text = f"beyond t({fmt(df)}) = {t:.2f} standard errors at 95%"
    return text + (f" Bonferroni-corrected over {tests} comparisons" if tests > 1 else "")


def worst_verdict(verdicts: Sequence[object]) -> str:
    """The worst verdict level among the values; "" when none was judged."""
    seen = [str(v) for v in verdicts if isinstance(v, str) and v in VERDICT_ORDER]
    return max(seen, key=VERDICT_ORDER.index) if seen else ""


def headline(rows: pd.DataFrame) -> str:
    """The agreement metric the rows carry (first of ``HEADLINE`` with a finite value), or ""."""
    for name in HEADLINE:
        if name in rows.columns and np.isfinite(pd.to_numeric(rows[name], errors="coerce")).any():
            return name
    return ""


def median(rows: pd.DataFrame, column: str) -> float:
    """Median of a numeric column over the rows (nan when absent or empty)."""
    if column not in rows.columns:
        return math.nan
    v = pd.to_numeric(rows[column], errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    return float(np.median(v)) if len(v) else math.nan


def group_summary(rows: pd.DataFrame) -> dict[str, object]:
    """What every derived table says of one group of seeds: counts, worst verdict, the headline
    agreement metric with its noise floor, whether the reference passed its gates, and times."""
    ok = rows[rows["status"] == "ok"] if "status" in rows.columns else rows.iloc[0:0]
    metric = headline(ok)
    ref_ok = pd.to_numeric(ok.get("reference_ok", pd.Series(dtype=float)), errors="coerce")
    wall = (pd.to_numeric(ok.get("compile_s", pd.Series(dtype=float)), errors="coerce")
            + pd.to_numeric(ok.get("run_s", pd.Series(dtype=float)), errors="coerce"))
    return {
        "n_seeds": int(len(rows)),
        "n_ok": int(len(ok)),
        "n_failed": int((rows.get("status") == "failed").sum()) if len(rows) else 0,
        "n_missing": int((rows.get("status") == "missing").sum()) if len(rows) else 0,
        "verdict": worst_verdict(list(ok.get("verdict", []))),
        "n_fail_verdicts": int((ok.get("verdict", pd.Series(dtype=str)) == "fail").sum()),
        "agreement_metric": metric,
        "agreement": median(ok, metric) if metric else math.nan,
        "agreement_floor": median(ok, f"{metric}_floor") if metric else math.nan,
        "reference_ok": bool(len(ref_ok.dropna()) and (ref_ok.dropna() == 1).all()),
        "run_s": median(ok, "run_s"),
        "compile_s": median(ok, "compile_s"),
        "wall_s": float(np.median(wall.dropna())) if len(wall.dropna()) else math.nan,
        "grad_evals": median(ok, "grad_evals"),
    }


def coverage_note(derived: pd.DataFrame) -> str:
    """" N of M planned runs are not in the results ..." when some are missing, else ""."""
    if "n_missing" not in derived.columns or not derived["n_missing"].sum():
        return ""
    missing, total = int(derived["n_missing"].sum()), int(derived["n_seeds"].sum())
    return (f" {missing} of {total} planned runs are not in the results (an interrupted or "
            "partial study): the answer covers the rest.")


def first_failure(rows: pd.DataFrame) -> str:
    """The error of the first failed row ("" when none failed)."""
    if "status" not in rows.columns or "error" not in rows.columns:
        return ""
    errors = rows.loc[rows["status"] == "failed", "error"]
    return str(errors.iloc[0]) if len(errors) else ""


def unfinished(derived: pd.DataFrame, key: str = "method") -> str:
    """" No finished run of X (2 failed, 1 missing; the first: <error>)." for the groups with no
    ok seed (the error from a ``failure`` column, ``first_failure``), else ""."""
    if "n_ok" not in derived.columns:
        return ""
    none = derived[derived["n_ok"] == 0]
    if none.empty:
        return ""
    parts = []
    for _, r in none.iterrows():
        error = r.get("failure", "")
        parts.append(f"{r[key]} ({int(r['n_failed'])} failed, {int(r['n_missing'])} missing"
                     + (f"; the first: {error}" if isinstance(error, str) and error else "")
                     + ")")
    return " No finished run of " + ", ".join(parts) + "."


def fmt(value: float, digits: int = 3) -> str:
    """A number for a sentence: ``digits`` significant figures, "n/a" when not finite."""
    if value is None or not np.isfinite(value):
        return "n/a"
    if float(value).is_integer() and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.{digits}g}"


def pm(value: float, se: float, digits: int = 3) -> str:
    """``value ± se`` for a sentence (the se dropped when unknown)."""
    return fmt(value, digits) + (f" ± {fmt(se, 2)}" if se is not None and np.isfinite(se) else
                                 " (se unknown)")


def log_ticks(ax, values) -> None:
    """Label a log x axis at ``values`` as plain numbers (no minor 10^x labels)."""
    from matplotlib.ticker import NullLocator

    ticks = sorted({float(v) for v in values if np.isfinite(v) and v > 0})
    ax.set_xticks(ticks, [stats_label(t) for t in ticks])
    ax.xaxis.set_minor_locator(NullLocator())


def stats_label(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"
