"""``diagnostics`` (beyond the documents): which reference-free signal predicts the verdict?

A user fitting their own model has no reference posterior, only what the fit itself shows. For
every SVI row of a results folder that has a verdict (the agreement with the reference, under
the current verdict policy: older rows are re-judged, ``benchmarks.scoring.rejudge``), this study
asks how well each reference-free signal predicts that verdict, as precision (of the flagged
rows, the share that fail) and recall (of the failing rows, the share flagged), each with a 95%
Wilson interval, for two targets: "fail" and "not pass" (warn or fail). The signals, thresholds
declared here before looking at any result:

* ``khat``: PSIS k-hat above ``KHAT_UNRELIABLE`` (0.7, Yao et al. 2018);
* ``no_plateau``: the loss never met the plateau rule (``converged_step`` missing);
* ``loss_sd``: end-state loss sd above ``LOSS_SD_NATS`` (1 nat: a loss still moving by a nat per
  step cannot resolve the ELBO differences of about a nat that separate guide families);
* ``seed_spread``: over the seeds of the same (model, method, settings, data), the final losses
  span more than ``SPREAD_FACTOR`` (2) times their median end-state sd: the seeds settle in
  different optima (the ``seeds`` study's rule); a group signal, given to each of its rows;
* ``elbo_gap``: the row's final ELBO is below the best guide's (the highest median final ELBO of
  any (method, settings) of the same model and data) by more than ``ELBO_GAP_NATS`` (1 nat) and
  twice its standard error. With log Z fixed, an ELBO gap is a KL(q || p) gap;
* ``any``: at least one of the above.

It runs nothing: ``select`` reads the rows of the results folder at the study's profile (runs
of ``svi-bench run`` and of grid-cell studies; rows of studies that run their own programs, such
as annealing stages or checkpoints, are not single fits and are left out), so it must come after
the studies whose rows it reads (last in ``nox -s studies``). NUTS rows carry no such signals.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.scoring.verdict import KHAT_UNRELIABLE
from svi_bench.benchmarks.studies import stats
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun

LOSS_SD_NATS = 1.0
SPREAD_FACTOR = 2.0
ELBO_GAP_NATS = 1.0
ELBO_GAP_SE = 2.0

SIGNALS: dict[str, str] = {
    "khat": f"PSIS k-hat above {KHAT_UNRELIABLE}",
    "no_plateau": "a loss with no plateau",
    "loss_sd": f"end-state loss sd above {LOSS_SD_NATS:g} nat",
    "seed_spread": f"final losses over seeds spread beyond {SPREAD_FACTOR:g} loss sds",
    "elbo_gap": f"final ELBO more than {ELBO_GAP_NATS:g} nat below the model's best guide",
    "any": "any of these signals",
}
TARGETS: dict[str, tuple[str, ...]] = {"fail": ("fail",), "not pass": ("warn", "fail")}
VERBS = {"fail": "fail", "not pass": "do not pass"}
GROUP = ["model", "method", "settings_hash", "data"]


def _num(rows: pd.DataFrame, column: str) -> pd.Series:
    if column not in rows.columns:
        return pd.Series(np.nan, index=rows.index, dtype="float64")
    return pd.to_numeric(rows[column], errors="coerce").astype("float64")


def _flag(condition: pd.Series, defined: pd.Series) -> pd.Series:
    """A signal column: True / False where it can be computed, NA where it cannot."""
    return condition.astype("boolean").where(defined.to_numpy(), pd.NA)


def signals(rows: pd.DataFrame) -> pd.DataFrame:
    """One boolean column per signal (NA where a row cannot show it), indexed like ``rows``."""
    out = pd.DataFrame(index=rows.index)
    if rows.empty:
        return out.assign(**{name: pd.Series(dtype="boolean") for name in SIGNALS})
    khat = _num(rows, "psis_khat")
    out["khat"] = _flag(khat > KHAT_UNRELIABLE, khat.notna())
    out["no_plateau"] = _flag(_num(rows, "converged_step").isna(),
                              pd.Series(True, index=rows.index))
    sd = _num(rows, "final_loss_sd")
    out["loss_sd"] = _flag(sd > LOSS_SD_NATS, sd.notna())
    loss = _num(rows, "final_loss_mean")
    spread = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    keys = [k for k in GROUP if k in rows.columns]
    for _, idx in rows.groupby(keys, dropna=False, sort=False).groups.items():
        values = loss[idx].dropna()
        if len(values) >= 2:
            spread[idx] = bool(values.max() - values.min() > SPREAD_FACTOR * sd[idx].median())
    out["seed_spread"] = spread
    out["elbo_gap"] = _elbo_gap(rows)
    out["any"] = out[list(SIGNALS)[:-1]].any(axis=1, skipna=True).astype("boolean")
    return out


def _elbo_gap(rows: pd.DataFrame) -> pd.Series:
    elbo, se = _num(rows, "final_elbo"), _num(rows, "final_elbo_se").fillna(0.0)
    gap = pd.Series(pd.NA, index=rows.index, dtype="boolean")
    by_model = [k for k in ("model", "data") if k in rows.columns]
    for _, idx in rows.groupby(by_model, dropna=False, sort=False).groups.items():
        sub = rows.loc[idx]
        keys = [k for k in ("method", "settings_hash") if k in sub.columns]
        best = elbo[idx].groupby([sub[k] for k in keys], dropna=False).median().max()
        if not np.isfinite(best):
            continue
        below = best - elbo[idx]
        flagged = (below > ELBO_GAP_NATS) & (below > ELBO_GAP_SE * se[idx])
        gap[idx] = _flag(flagged, elbo[idx].notna())
    return gap


def select(results: pd.DataFrame, profile: str) -> pd.DataFrame:
    """The folder's judged SVI rows at ``profile`` under the current verdict policy, with their
    signal columns (``signal_<name>``) so that the stored rows show what was flagged."""
    from svi_bench.benchmarks.scoring.rejudge import current_verdicts

    if results.empty or "verdict" not in results.columns:
        return pd.DataFrame()
    rows = results[(results["profile"] == profile) & (results["status"] == "ok")
                   & (results["method"] != NUTS)]
    if "study_program" in rows.columns:  # a study's own programs (stages, checkpoints): not runs
        rows = rows[~rows["study_program"].astype("boolean").fillna(False)]
    rows, _ = current_verdicts(rows.reset_index(drop=True))
    # an inconclusive verdict is no ground truth for a signal to predict: such rows are left out
    rows = rows[rows["verdict"].astype("string").fillna("").isin(("pass", "warn", "fail"))]
    rows = rows.reset_index(drop=True)
    return rows.join(signals(rows).add_prefix("signal_"))


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (signal, target): rows where the signal is defined, flagged, positives,
    precision and recall with 95% Wilson intervals, and the base rate of the target."""
    out = []
    if rows.empty or "verdict" not in rows.columns:
        return pd.DataFrame(out)
    flags = signals(rows)
    verdicts = rows["verdict"].astype("string").fillna("")
    for target, levels in TARGETS.items():
        positive = verdicts.isin(levels)
        for name, label in SIGNALS.items():
            defined = flags[name].notna()
            flag = flags[name].fillna(False).astype(bool) & defined
            n, k, pos = int(defined.sum()), int(flag.sum()), int((positive & defined).sum())
            tp = int((flag & positive).sum())
            p_lo, p_hi = stats.wilson(tp, k)
            r_lo, r_hi = stats.wilson(tp, pos)
            out.append({"signal": name, "description": label, "target": target, "n_rows": n,
                        "n_flagged": k, "n_positive": pos, "true_positives": tp,
                        "base_rate": pos / n if n else math.nan,
                        "precision": tp / k if k else math.nan, "precision_lo": p_lo,
                        "precision_hi": p_hi, "recall": tp / pos if pos else math.nan,
                        "recall_lo": r_lo, "recall_hi": r_hi,
                        "n_reference_failed": int((_num(rows, "reference_ok")[defined] == 0)
                                                  .sum())})
    return pd.DataFrame(out)


def _pct(x: float) -> str:
    return "n/a" if not np.isfinite(x) else f"{100 * x:.0f}%"


def _chance(r) -> str:
    """Precision against the base rate, judged on the Wilson interval."""
    if not r.n_flagged:
        return "it flags no row"
    if r.precision_lo > r.base_rate:
        return "better than chance"
    if r.precision_hi < r.base_rate:
        return "worse than chance"
    return "no better than chance"


def sentence(r) -> str:
    """One signal's answer for one target, every number from the table row ``r``."""
    label = r.description[:1].upper() + r.description[1:]
    verb = VERBS[r.target]
    if not r.n_rows:
        return f"{label}: no row can show it."
    if not r.n_flagged:
        return f"{label} flags none of the {r.n_rows} rows ({r.n_positive} of which {verb})."
    text = (f"{label} flags {r.n_flagged} of {r.n_rows} rows; {_pct(r.precision)} of them "
            f"{verb} (95% Wilson {_pct(r.precision_lo)}-{_pct(r.precision_hi)}; base rate "
            f"{_pct(r.base_rate)}: {_chance(r)})")
    if not r.n_positive:
        return text + f"; no row's verdict is {r.target}."
    return text + (f", and it catches {r.true_positives} of the {r.n_positive} rows that {verb} "
                   f"(recall {_pct(r.recall)}, {_pct(r.recall_lo)}-{_pct(r.recall_hi)}).")


def answer(derived: pd.DataFrame) -> str:
    """A sentence per signal for the "fail" target, then the best signal for "not pass"."""
    if derived.empty or "signal" not in derived.columns:
        return ("No judged SVI rows at this profile in the results folder: run `svi-bench run` "
                "or the other studies into it first.")
    fail = derived[derived["target"] == "fail"]
    parts = [sentence(r) for r in fail.itertuples()]
    loose = derived[(derived["target"] == "not pass") & (derived["signal"] != "any")]
    loose = loose[loose["n_flagged"] > 0]
    if len(loose):
        best = loose.sort_values("precision_lo", ascending=False).iloc[0]
        parts.append(f"For \"not pass\" (warn or fail; base rate {_pct(best.base_rate)}), the "
                     f"most precise signal is {best.description}: {_pct(best.precision)} "
                     f"({_pct(best.precision_lo)}-{_pct(best.precision_hi)}), recall "
                     f"{_pct(best.recall)}.")
    failed_refs = int(fail["n_reference_failed"].max()) if len(fail) else 0
    if failed_refs:
        parts.append(f"{failed_refs} rows were judged against a reference that failed its "
                     "gates, so their verdicts carry less weight.")
    return " ".join(parts)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Precision and recall per signal with 95% Wilson intervals, one panel per target; the
    dashed mark is the signal's base rate of the target (a useless signal's precision)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(TARGETS), figsize=(11, 3.8), sharey=True, squeeze=False)
    for ax, target in zip(axes[0], TARGETS, strict=True):
        sub = derived[derived["target"] == target] if len(derived) else derived
        x = np.arange(len(sub))
        for offset, what, colour in ((-0.2, "precision", "tab:blue"),
                                     (0.2, "recall", "tab:orange")):
            if not len(sub):
                continue
            value = sub[what].to_numpy(dtype=float)
            err = np.array([value - sub[f"{what}_lo"].to_numpy(dtype=float),
                            sub[f"{what}_hi"].to_numpy(dtype=float) - value])
            ax.bar(x + offset, np.nan_to_num(value), 0.4, yerr=np.nan_to_num(err),
                   capsize=3, color=colour, label=what)
        if len(sub):  # each signal's own base rate (the rows where it is defined)
            ax.hlines(sub["base_rate"].to_numpy(dtype=float), x - 0.45, x + 0.45, colors="k",
                      linestyles="--", lw=1.2, label="base rate")
        ax.set_xticks(x, list(sub["signal"]) if len(sub) else [], rotation=30, ha="right")
        ax.set(ylim=(0, 1.05), title=f"predicting verdict {target}")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("fraction (95% Wilson)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _execute(run: StudyRun) -> None:
    """Runs nothing: the rows are the folder's (``select``)."""
    run.progress("reading the judged rows of the results folder (runs nothing)")


NOTHING = Scope((), (), 0, ())

STUDY = Study(
    name="diagnostics",
    question="Without a reference, which signal of the fit itself (k-hat, no plateau, a noisy "
             "loss, seeds in different optima, an ELBO gap to the best guide) predicts that "
             "the posterior disagrees with the reference?",
    document="beyond the documents",
    section="which diagnostics to trust",
    scopes={"smoke": NOTHING, "quick": NOTHING, "paper": NOTHING},
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="Per reference-free signal, the precision (of the rows it flags, the share "
                   "whose verdict is fail / not pass) and recall (of those rows, the share it "
                   "flags) over every judged SVI row of the results folder at this profile, "
                   "with 95% Wilson intervals; the dashed mark is the base rate over the rows "
                   "where the signal is defined, the precision of a signal that knows nothing.",
    execute=_execute,
    select=select,
)
