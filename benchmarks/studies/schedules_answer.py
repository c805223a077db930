"""The ``schedules`` study's table, answer and figure: pure functions of its rows.

One table row per (optimiser, stopping rule): seeds run and ok, held-out lpd and accuracy,
predictive disagreement with the reference (and its floor), steps run, how often the rule fired
(and the earliest step it could: patience x evaluation cadence), how often reduce_on_plateau cut
the step, run and compile time. Two paired comparisons seed by seed (the same seed starts from
the same initial guide): each row against constant Adam without stopping (``adam/none``, the document's
end-to-end fit) and against its own optimiser without stopping. A difference of held-out lpd over n
paired seeds is "better" when it lies above zero by more than t(n - 1) (the 95% Student-t quantile,
``stats.decide``) times its standard error over seeds, "worse" when below by as much, otherwise
indistinguishable from seed noise (one seed: undecided).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from svi_bench.benchmarks.studies import stats

OPTIMIZERS = ("adam", "onecycle", "onecycle_plateau")
RULES = ("none", "document", "conventional")
BASELINE = ("adam", "none")
LABEL = {"adam": "constant Adam", "onecycle": "OneCycle", "onecycle_plateau": "OneCycle + plateau",
         "none": "no stopping", "document": "the document's rule",
         "conventional": "the conventional rule"}
BETTER, WORSE, SAME, UNDECIDED = "better", "worse", "indistinguishable", "undecided"
COLUMNS = ("optimizer", "stop_rule", "n_seeds", "n_ok", "learning_rate", "test_lpd", "test_lpd_se",
           "test_accuracy", "test_accuracy_se", "pred_prob_mad", "pred_prob_mad_se",
           "pred_prob_mad_floor", "ref_test_lpd", "steps_run", "steps_run_se", "num_steps",
           "earliest_stop", "stopped_frac", "plateau_reduced_frac", "run_s", "compile_s",
           "d_lpd_vs_adam", "d_lpd_vs_adam_se", "d_lpd_vs_adam_n",
           "vs_adam", "d_lpd_vs_no_stop", "d_lpd_vs_no_stop_se", "d_lpd_vs_no_stop_n",
           "vs_no_stop", "first_error")


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def finding(diff: float, se: float, n_paired: int) -> str:
    """The decision on a paired difference of held-out lpd (higher is better), its se and its
    number of paired seeds (``stats.decide`` with n - 1 degrees of freedom)."""
    return {1: BETTER, -1: WORSE, 0: SAME, None: UNDECIDED}[stats.decide(diff, se, n_paired - 1)]


def _ok(rows: pd.DataFrame) -> pd.DataFrame:
    return rows[rows["status"].astype(str) == "ok"] if "status" in rows.columns else rows


def _paired(rows: pd.DataFrame, a: tuple[str, str], b: tuple[str, str]
            ) -> tuple[float, float, int]:
    """Mean, se and number of seeds of test_lpd(a) - test_lpd(b), seeds ok in both."""
    ok = _ok(rows)

    def by_seed(key):
        sel = ok[(ok["optimizer"].astype(str) == key[0]) & (ok["stop_rule"].astype(str) == key[1])]
        return pd.Series(_num(sel, "test_lpd").to_numpy(), index=_num(sel, "seed").to_numpy())

    left, right = by_seed(a), by_seed(b)
    common = left.index.intersection(right.index)
    if not len(common):
        return np.nan, np.nan, 0
    diff = (left[common] - right[common]).to_numpy()
    return (*stats.mean_se(diff), int(np.isfinite(diff).sum()))


def _learning_rate(rows: pd.DataFrame) -> float:
    """The (peak) step size the rows ran with, from their stored settings; nan if unknown."""
    rates = []
    for text in rows.get("settings", pd.Series(dtype=object)):
        try:
            rates.append(float(json.loads(text)["learning_rate"]))
        except (TypeError, ValueError, KeyError):
            continue
    return float(np.median(rates)) if rates else np.nan


def _first_error(rows: pd.DataFrame) -> str:
    bad = rows[rows["status"].astype(str) == "failed"] if "status" in rows.columns else rows[:0]
    return str(bad["error"].iloc[0]) if len(bad) and "error" in bad.columns else ""


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """The table of the module docstring, in optimiser then rule order."""
    if not len(rows) or "optimizer" not in rows.columns:
        return pd.DataFrame(columns=list(COLUMNS))
    out = []
    for opt in [o for o in OPTIMIZERS if o in set(rows["optimizer"].astype(str))]:
        for rule in [r for r in RULES if r in set(rows["stop_rule"].astype(str))]:
            group = rows[(rows["optimizer"].astype(str) == opt)
                         & (rows["stop_rule"].astype(str) == rule)]
            if not len(group):
                continue
            ok = _ok(group)
            rec: dict = {"optimizer": opt, "stop_rule": rule, "n_seeds": len(group),
                         "n_ok": len(ok), "learning_rate": _learning_rate(group)}
            for col in ("test_lpd", "test_accuracy", "pred_prob_mad", "steps_run"):
                rec[col], rec[f"{col}_se"] = stats.mean_se(_num(ok, col).to_numpy())
            for col in ("pred_prob_mad_floor", "ref_test_lpd", "num_steps", "run_s",
                        "compile_s"):
                rec[col] = stats.median(ok, col)
            rec["earliest_stop"] = float((_num(ok, "stop_patience")
                                          * _num(ok, "eval_every")).median())
            rec["stopped_frac"] = float(_num(ok, "stopped_early").mean()) if len(ok) else np.nan
            scale = _num(ok, "plateau_scale")
            rec["plateau_reduced_frac"] = float((scale < 1).mean()) if scale.notna().any() \
                else np.nan
            for name, other in (("adam", BASELINE), ("no_stop", (opt, "none"))):
                if other == (opt, rule):  # a run is not compared with itself
                    rec.update({f"d_lpd_vs_{name}": np.nan, f"d_lpd_vs_{name}_se": np.nan,
                                f"d_lpd_vs_{name}_n": 0, f"vs_{name}": ""})
                    continue
                d, se, n = _paired(rows, (opt, rule), other)
                rec.update({f"d_lpd_vs_{name}": d, f"d_lpd_vs_{name}_se": se,
                            f"d_lpd_vs_{name}_n": n, f"vs_{name}": finding(d, se, n)})
            rec["first_error"] = _first_error(group)
            out.append(rec)
    return pd.DataFrame(out, columns=list(COLUMNS))


def _row(table: pd.DataFrame, opt: str, rule: str) -> pd.Series | None:
    sel = table[(table["optimizer"] == opt) & (table["stop_rule"] == rule)]
    return sel.iloc[0] if len(sel) else None


def _rate(row: pd.Series) -> str:
    """`` 0.01`` (the row's step size, from its settings) or "" when unknown."""
    rate = row.get("learning_rate", np.nan)
    return f" {stats.fmt(rate)}" if np.isfinite(rate) else ""


def _steps(value: float) -> str:
    return f"{value:.0f}" if np.isfinite(value) else "n/a"


def _diff(value: float, se: float, n: int, finding_: str) -> str:
    """``+d ± t se (paired over n seeds, ± t(n-1) = ... se: finding)``: the half-width is the
    one the decision used (``stats.t_multiplier``)."""
    sign = "+" if np.isfinite(value) and value >= 0 else ""
    t = stats.t_multiplier(n - 1)
    half = t * se if np.isfinite(t) and np.isfinite(se) else np.nan
    how = f"paired over {n} seeds, ± t({n - 1}) = {t:.2f} se: " if np.isfinite(half) else ""
    return f"{sign}{stats.pm(value, half, 2)} ({how}{finding_})"


def answer(table: pd.DataFrame) -> str:
    """The sentence: each schedule against constant Adam, each stopping rule against running the
    whole budget (steps saved and the lpd it cost or gained), and the closest to the reference."""
    if not len(table) or not table["n_ok"].sum():
        return "No run of the study finished ok, so the question is open."
    base = _row(table, *BASELINE)
    parts = []
    if base is not None and base["n_ok"]:
        n = int(base["n_ok"])
        parts.append(
            f"Constant Adam{_rate(base)} without stopping reaches a held-out lpd of "
            f"{stats.pm(base['test_lpd'], base['test_lpd_se'])} nats per test point over {n} "
            f"seed{'s' if n != 1 else ''} (NUTS reference {stats.fmt(base['ref_test_lpd'])})")
        for opt in OPTIMIZERS[1:]:
            r = _row(table, opt, "none")
            if r is not None and r["n_ok"]:
                text = (f"{LABEL[opt]} changes it by "
                        + _diff(r["d_lpd_vs_adam"], r["d_lpd_vs_adam_se"], r["d_lpd_vs_adam_n"],
                                r["vs_adam"]))
                if opt == "onecycle_plateau" and np.isfinite(r["plateau_reduced_frac"]):
                    text += (f", reduce_on_plateau having cut the step in "
                             f"{stats.fmt(100 * r['plateau_reduced_frac'], 2)}% of its runs")
                parts.append(text)
    sentences = ["; ".join(parts) + "." if parts else ""]
    for rule in RULES[1:]:
        rs = table[(table["stop_rule"] == rule) & (table["n_ok"] > 0)]
        if not len(rs):
            continue
        bits = []
        for _, r in rs.iterrows():
            full = _row(table, r["optimizer"], "none")
            full_s = full["run_s"] if full is not None else np.nan
            bits.append(f"{LABEL[r['optimizer']]}: {_steps(r['steps_run'])} of "
                        f"{_steps(r['num_steps'])} steps, fired in "
                        f"{stats.fmt(100 * r['stopped_frac'], 2)}% of seeds, run "
                        f"{stats.fmt(r['run_s'], 2)} s per seed vs {stats.fmt(full_s, 2)} s, lpd "
                        + _diff(r["d_lpd_vs_no_stop"], r["d_lpd_vs_no_stop_se"],
                                r["d_lpd_vs_no_stop_n"], r["vs_no_stop"]) + " vs no stopping")
        earliest = stats.fmt(float(pd.to_numeric(rs["earliest_stop"], errors="coerce").median()))
        sentences.append(f"With {LABEL[rule]} (the earliest it can stop: step {earliest}) the runs "
                         "stop after (mean) " + "; ".join(bits) + ".")
    ok = table[table["n_ok"] == table["n_ok"].max()]  # rows with every seed: no lucky few
    mad = pd.to_numeric(ok["pred_prob_mad"], errors="coerce")
    if mad.notna().any():
        best = ok.loc[mad.idxmin()]
        sentences.append(
            f"Closest to the reference's predictive probabilities: {LABEL[best['optimizer']]} "
            f"with {LABEL[best['stop_rule']]} (mean absolute difference "
            f"{stats.pm(best['pred_prob_mad'], best['pred_prob_mad_se'])}, noise floor "
            f"{stats.fmt(best['pred_prob_mad_floor'])}; worst "
            f"{stats.fmt(mad.max())}).")
    failed = int((table["n_seeds"] - table["n_ok"]).sum())
    if failed:
        sentences.append(f"{failed} run(s) did not finish ok and are left out.")
    return " ".join(s for s in sentences if s)


def figure(rows: pd.DataFrame, table: pd.DataFrame):
    """Held-out lpd, disagreement with the reference and steps run per (optimiser, rule)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12.0, 3.6))
    ok = _ok(rows)
    labels = [f"{r.optimizer}\n{r.stop_rule}" for r in table.itertuples()]
    panels = (("test_lpd", "held-out lpd (nats / point)", "ref_test_lpd"),
              ("pred_prob_mad", "|p - p_ref| (mean)", "pred_prob_mad_floor"),
              ("steps_run", "steps run", "num_steps"))
    for ax, (col, title, line) in zip(axes, panels, strict=True):
        for j, r in enumerate(table.itertuples()):
            sel = ok[(ok["optimizer"].astype(str) == r.optimizer)
                     & (ok["stop_rule"].astype(str) == r.stop_rule)]
            vals = _num(sel, col).to_numpy()
            ax.scatter(np.full(len(vals), j), vals, s=10, alpha=0.6, color="#1f77b4")
            mean, se = getattr(r, col), getattr(r, f"{col}_se")
            if np.isfinite(mean):
                half = stats.t_multiplier(r.n_ok - 1) * se
                ax.errorbar([j + 0.2], [mean], yerr=[half if np.isfinite(half) else 0],
                            fmt="o", color="black", ms=4, capsize=3)
        ref = pd.to_numeric(table[line], errors="coerce")
        if ref.notna().any():
            ax.axhline(float(ref.median()), ls="--", color="grey", lw=1)
        ax.set_xticks(range(len(labels)), labels, fontsize=6, rotation=60)
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
