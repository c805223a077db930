"""The ``annealing`` study's table, answer and figure: pure functions of its rows.

Per guide, the last stage of the annealed run (alpha 0.02) against the direct fit at 0.02 with
the same number of steps, seed by seed: the marginal W1 to the exact posterior (max over theta's
components, reference sd) and KL(q || p) = log Z - ELBO (log Z exact). Annealing "helps" a guide
when the paired difference (annealed - direct) of W1 lies below zero by more than the Student-t
quantile of its seeds (n paired seeds: t(n - 1) at 95%, ``stats.decide``) times its standard
error; "hurts" when above by as much; otherwise the two are indistinguishable from seed noise (one
seed: no estimate of that noise, no decision). A guide with no seed where
both runs are ok, and failed rows, "failed" (the answer names the stage it first failed at).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.inference.annealing import RULE_TOLERANCE
from svi_bench.benchmarks.studies import stats

ANNEALED, DIRECT = "annealed", "direct"
ORDER = ("autonormal", "autodiagonalnormal", "automvn", "autodais", "autoiaf", "autobnaf")
HELPS, HURTS, SAME, UNDECIDED = "annealing better", "direct better", "no difference", "undecided"
FAILED = "failed"  # no seed with both runs ok, and failed rows say why
OBSERVED = (2, 5)  # the categories the document's eight observations fall in


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _methods(rows: pd.DataFrame) -> list[str]:
    names = list(dict.fromkeys(rows["method"].astype(str)))
    return sorted(names, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))


def finding(diff: float, se: float, n_paired: int) -> str:
    """The decision on a paired difference annealed - direct (lower is better), its se and its
    number of paired seeds (``stats.decide`` with n - 1 degrees of freedom)."""
    return {-1: HELPS, 1: HURTS, 0: SAME, None: UNDECIDED}[
        stats.decide(diff, se, n_paired - 1)]


def _first_error(rows: pd.DataFrame) -> str:
    """The reason of the earliest failed stage (annealed rows before the direct fit)."""
    bad = rows[rows["status"] == "failed"]
    if not len(bad) or "error" not in bad.columns:
        return ""
    order = (bad["variant"] != ANNEALED).astype(int) * 10**6 + _num(bad, "stage").fillna(0)
    return str(bad.loc[order.sort_values(kind="stable").index[0], "error"])


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per guide: the last annealed stage and the direct fit (means ± se over ok seeds),
    their paired differences in W1 and KL with the finding, the noise floor, how the stages
    ended (rule or cap), steps and times."""
    out = []
    if rows.empty or "variant" not in rows.columns:
        return pd.DataFrame(out)
    for method in _methods(rows):
        g = rows[rows["method"].astype(str) == method]
        ann, direct = g[g["variant"] == ANNEALED], g[g["variant"] == DIRECT]
        last = _num(ann, "stage").max()
        ann_last = ann[_num(ann, "stage") == last]
        a = ann_last[ann_last["status"] == "ok"].set_index("seed")
        d = direct[direct["status"] == "ok"].set_index("seed")
        paired = a.index.intersection(d.index)
        ok_stages = ann[ann["status"] == "ok"]
        record = {"method": method, "n_seeds": int(g["seed"].nunique()),
                  "n_stages": int(ann["stage"].nunique()),
                  "final_alpha": float(_num(ann_last, "stage_alpha").median()),
                  "n_ok_annealed": int(len(a)), "n_ok_direct": int(len(d)),
                  "n_paired": int(len(paired))}
        for name in ("w1_max", "kl_exact"):
            record[f"annealed_{name}"], record[f"annealed_{name}_se"] = stats.mean_se(
                _num(a, name))
            record[f"direct_{name}"], record[f"direct_{name}_se"] = stats.mean_se(_num(d, name))
            diff = _num(a.loc[paired], name) - _num(d.loc[paired], name)
            record[f"diff_{name}"], record[f"diff_{name}_se"] = stats.mean_se(diff)
        record["w1_max_floor"] = stats.median(a, "w1_max_floor")
        record["finding"] = finding(record["diff_w1_max"], record["diff_w1_max_se"], len(paired))
        if not len(paired) and (g["status"] == "failed").any():
            record["finding"] = FAILED
        record["annealed_verdict"] = stats.worst_verdict(list(a.get("verdict", [])))
        record["direct_verdict"] = stats.worst_verdict(list(d.get("verdict", [])))
        judged = ok_stages.get("verdict", pd.Series(dtype=str)).astype(str)
        record["stages_pass_frac"] = float((judged == "pass").mean()) if len(judged) else math.nan
        capped = ok_stages.get("stage_capped", pd.Series(dtype=bool)).astype(bool)
        record["stages_capped"] = int(capped.sum())
        record["stages_ok"] = int(len(ok_stages))
        record["batches_per_stage"] = stats.median(ok_stages, "stage_batches")
        record["total_steps"] = stats.median(d if len(d) else a, "cumulative_steps")
        per_seed = ok_stages.groupby("seed")["run_s"].sum() if len(ok_stages) else []
        record["annealed_run_s"] = float(np.median(per_seed)) if len(per_seed) else math.nan
        record["direct_run_s"] = stats.median(d, "run_s")
        record["compile_s"] = stats.median(g[g["status"] == "ok"], "compile_s")
        record["n_failed_rows"] = int((g["status"] == "failed").sum())
        record["failure"] = _first_error(g)
        failed = ann[ann["status"] == "failed"]
        first = _num(failed, "stage").min() if len(failed) else math.nan
        record["first_failed_stage"] = first
        record["first_failed_alpha"] = float(
            _num(failed[_num(failed, "stage") == first], "stage_alpha").max()) \
            if len(failed) else math.nan
        out.append(record)
    return pd.DataFrame(out)


def _where_failed(r: pd.Series) -> str:
    if not np.isfinite(r.get("first_failed_stage", math.nan)):
        return ""
    return (f", the annealed run failing from stage {int(r['first_failed_stage'])} (alpha "
            f"{stats.fmt(r['first_failed_alpha'])})")


def _sentence(r: pd.Series) -> str:
    m = r["method"]
    if r["n_paired"] == 0:
        why = f" ({r['failure']}{_where_failed(r)})" if r.get("failure") else ""
        return (f"{m}: no seed has both an ok annealed run and an ok direct fit "
                f"({int(r['n_ok_annealed'])} and {int(r['n_ok_direct'])} of "
                f"{int(r['n_seeds'])}){why}.")
    text = (f"{m}: at alpha {stats.fmt(r['final_alpha'])} the annealed fit's W1 is "
            f"{stats.pm(r['annealed_w1_max'], r['annealed_w1_max_se'])} reference sd and the "
            f"direct fit's {stats.pm(r['direct_w1_max'], r['direct_w1_max_se'])} (noise floor "
            f"{stats.fmt(r['w1_max_floor'])}) after {stats.fmt(r['total_steps'])} steps each; "
            f"annealed - direct {stats.pm(r['diff_w1_max'], r['diff_w1_max_se'])} over "
            f"{int(r['n_paired'])} paired seeds: ")
    beyond = stats.rule(r["n_paired"] - 1)
    text += {HELPS: f"annealing reaches the final posterior better, {beyond}",
             HURTS: f"the direct fit reaches it better, {beyond}",
             SAME: f"no difference {beyond}",
             UNDECIDED: "one seed, so no seed noise to judge the difference against"}[r["finding"]]
    if np.isfinite(r["diff_kl_exact"]):
        text += (f" (KL(q||p) {stats.fmt(r['annealed_kl_exact'])} vs "
                 f"{stats.fmt(r['direct_kl_exact'])} nats)")
    if r["annealed_verdict"] or r["direct_verdict"]:
        text += (f"; verdicts {r['annealed_verdict'] or 'none'} (annealed) and "
                 f"{r['direct_verdict'] or 'none'} (direct)")
    if r["stages_ok"]:
        ruled = r["stages_ok"] - r["stages_capped"]
        text += (f"; the {RULE_TOLERANCE:.0%} rule ended {int(ruled)} of {int(r['stages_ok'])} "
                 "stages, the batch cap the rest")
    if r["n_failed_rows"]:
        text += f"; {int(r['n_failed_rows'])} failed rows ({r['failure']}{_where_failed(r)})"
    return text + "."


def answer(derived: pd.DataFrame) -> str:
    """A count of guides per finding, then one sentence per guide with its figures."""
    if derived.empty:
        return "No runs of this study are in the results."
    groups = {f: list(derived.loc[derived["finding"] == f, "method"]) for f in
              (HELPS, HURTS, SAME, UNDECIDED, FAILED)}
    lead = (f"Annealing reaches the final posterior better than a direct fit with the same steps "
            f"for {len(groups[HELPS])} of {len(derived)} guides"
            + (f" ({', '.join(groups[HELPS])})" if groups[HELPS] else "")
            + f", worse for {len(groups[HURTS])}"
            + (f" ({', '.join(groups[HURTS])})" if groups[HURTS] else "")
            + f", indistinguishable within seed noise for {len(groups[SAME])}"
            + (f", undecided for {len(groups[UNDECIDED])}" if groups[UNDECIDED] else "")
            + (f"; {len(groups[FAILED])} failed (no seed with both runs ok: "
               f"{', '.join(groups[FAILED])})"
               if groups[FAILED] else "")
            + ".")
    return " ".join([lead, *(_sentence(r) for _, r in derived.iterrows())])


def _means(rows: pd.DataFrame) -> np.ndarray:
    """q's mean of theta per row (NaN rows where it was not stored)."""
    out = []
    for text in rows.get("theta_mean", pd.Series([None] * len(rows))):
        try:
            out.append(json.loads(text))
        except (TypeError, ValueError):
            out.append([math.nan] * (max(OBSERVED) + 1))
    return np.asarray(out, dtype=float).reshape(len(rows), -1)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """The document's figure per guide: loss per stage, the observed categories' posterior means
    against the exact ones, and W1 to the exact posterior with its floor; direct fits as crosses."""
    import matplotlib.pyplot as plt

    from svi_bench.models import REGISTRY

    spec = REGISTRY["dirichlet_categorical"]
    fig, axes = plt.subplots(3, 1, figsize=(9, 10), sharex=True)
    ok = rows[rows["status"] == "ok"]
    ann = ok[ok["variant"] == ANNEALED]
    stage_alpha = ann.groupby("stage")["stage_alpha"].median().sort_index()
    if len(stage_alpha):
        stages = stage_alpha.index.to_numpy(dtype=float)
        data = [spec.make_data(alpha_scale=float(a)) for a in stage_alpha]
        axes[0].plot(stages, [-spec.log_evidence(ds) for ds in data], "k--", lw=1,
                     label="-log Z (exact)")
        exact = np.array([spec.exact_moments(ds)["theta"][0] for ds in data])
        for j in OBSERVED:
            axes[1].plot(stages, exact[:, j], "k--", lw=1)
        floor = ann.groupby("stage")["w1_max_floor"].median().sort_index()
        axes[2].plot(floor.index, floor.to_numpy(dtype=float), color="0.5", ls=":", lw=2,
                     label="noise floor")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for c, method in enumerate(_methods(ok) if len(ok) else []):
        color = colors[c % len(colors)]
        mine = ann[ann["method"] == method]
        per_stage = mine.groupby("stage")
        axes[0].plot(per_stage["stage_loss"].median(), ".", color=color, ms=4, label=method)
        means = pd.DataFrame(_means(mine), index=mine["stage"].to_numpy()).groupby(level=0)
        means = means.median()
        for j, marker in zip(OBSERVED, ("o", "s"), strict=True):
            if j in means.columns:
                axes[1].plot(means.index, means[j], marker, color=color, ms=3,
                             label=f"{method} theta[{j}]")
        axes[2].plot(per_stage["w1_max"].median(), "-", color=color, label=method)
        d = ok[(ok["variant"] == DIRECT) & (ok["method"] == method)]
        if len(d):
            x = float(_num(d, "stage").median())
            axes[0].plot([x], [_num(d, "stage_loss").median()], "x", color=color, ms=9)
            dm = np.nanmedian(_means(d), axis=0)
            axes[1].plot([x] * len(OBSERVED), [dm[j] for j in OBSERVED], "x", color=color, ms=9)
            axes[2].plot([x], [_num(d, "w1_max").median()], "x", color=color, ms=9)
    if len(stage_alpha) > 1:  # alpha on a top axis: the schedule is geometric in the stage
        n, low = float(stage_alpha.index.max()), float(stage_alpha.min())
        top = axes[0].secondary_xaxis("top", functions=(
            lambda x: low ** (np.asarray(x, dtype=float) / n),
            lambda a: n * np.log(np.clip(np.asarray(a, dtype=float), 1e-12, None)) / np.log(low)))
        ticks = [a for a in (1.0, 0.5, 0.2, 0.1, 0.05, 0.02) if a >= low * 0.999]
        top.set_xticks(ticks, [f"{a:g}" for a in ticks])
        top.set_xlabel("alpha")
    axes[0].set(ylabel="ELBO loss at stage end", title="annealed live SVI, dirichlet_categorical")
    axes[1].set(ylabel="posterior mean of theta")
    span = (f" (alpha from {stats.fmt(stage_alpha.max())} down to {stats.fmt(stage_alpha.min())})"
            if len(stage_alpha) else "")
    axes[2].set(xlabel=f"stage{span}",
                ylabel="W1 to exact (max, ref sd)", yscale="log")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig
