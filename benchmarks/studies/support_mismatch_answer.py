"""The ``support_mismatch`` study's table, answer and figure: pure functions of its rows.

A seed fails when its fit failed (``status`` failed: non-finite parameters or draws, losses
non-finite to the end), when its loss trace had a non-finite value at all (``nan_count`` > 0:
a draw outside the support scored -inf) or when its verdict against the reference is fail. Per
(model, guide): the counts of each, the failure rate with its 95% Wilson interval, and W1 of the
seeds that ran (mean ± se over seeds) against its noise floor. The mismatched guide against each
matched one of the same model: it fails more often when the Wilson intervals do not overlap
(``stats.intervals_apart``); it has more non-finite losses when its mean of log(1 + count) per
seed (a few seeds with thousands would swamp a plain mean) exceeds the matched one's, and agrees
worse when its mean W1 does, each by more than the Student-t multiple of the difference's se
(``stats.decide``, Bonferroni over both decisions of every pair). For ``linreg_outliers`` both
manual guides keep the document's Normals on ``bg_sigma`` and ``theta`` (``NOTES``), so the
matched guide has non-finite losses too: the count, not their presence, tells Q's part.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
from scipy import stats as distributions

from svi_bench.benchmarks.studies import stats

MISMATCHED, MATCHED = "mismatched", "matched"
MORE, FEWER, SAME, UNDECIDED = ("fails more often", "fails less often",
                                "fails about as often (within the noise)", "no decision")
WORSE, BETTER, AS_WELL = "agrees worse", "agrees better", "agrees as well (within the noise)"
MORE_NAN, FEWER_NAN, SAME_NAN = ("has more non-finite losses", "has fewer non-finite losses",
                                 "has as many non-finite losses (within the noise)")
QUOTE = ("mixing and matching dissimilar distributions can lead to badly fit surrogate "
         "distributions, and can even break the numerical fitting procedure")
#: What the document says of each model's mismatched guide, and whether it expects harm.
CLAIMS = {
    "coin": ("We can get away with this discrepency in this well behaved case", False),
    "linreg_outliers": ('not only is a gaussian a bad match in terms of "shape", it can also '
                        "easily break the entire SVI optimization machine", True),
}
#: What else a model's guides share, for the reader of its counts.
NOTES = {
    "linreg_outliers": "Both manual guides keep the document's Normals on bg_sigma and theta, "
                       "whose draws also leave their supports: the matched guide's non-finite "
                       "losses come from those, the mismatched one's from them and Q.",
}


#: The [0, 1] parameter of each model, and the fitted guides' parameter names for it.
PARAMETER = {"coin": "latent_fairness", "linreg_outliers": "Q"}
NORMAL_PARAMS = (("mean", "var"), ("Q_mu", "Q_sig"))  # the document's names (var: the sd)
BETA_PARAMS = (("alpha_q", "beta_q"), ("Q_A", "Q_B"))


def q_density(params: dict, site: str, x: np.ndarray) -> np.ndarray | None:
    """The fitted guide's density of ``site`` at ``x`` from its parameters: a Normal, a Beta, or
    AutoNormal's Normal in the unconstrained space mapped by the sigmoid (a logit-normal); None
    for parameters of another shape."""
    if f"{site}_auto_loc" in params:
        loc, scale = params[f"{site}_auto_loc"], params[f"{site}_auto_scale"]
        inside = (x > 0) & (x < 1)
        z = np.log(np.where(inside, x, 0.5)) - np.log1p(-np.where(inside, x, 0.5))
        return np.where(inside, distributions.norm.pdf(z, loc, scale)
                        / np.where(inside, x * (1 - x), 1.0), 0.0)
    for a, b in BETA_PARAMS:
        if a in params and b in params:
            return distributions.beta.pdf(x, params[a], params[b])
    for mu, sd in NORMAL_PARAMS:
        if mu in params and sd in params:
            return distributions.norm.pdf(x, params[mu], params[sd])
    return None


def outside_mass(params: dict) -> float:
    """The mass a fitted Normal guide puts outside [0, 1] (nan for any other guide)."""
    for mu, sd in NORMAL_PARAMS:
        if mu in params and sd in params:
            return float(distributions.norm.cdf(0.0, params[mu], params[sd])
                         + distributions.norm.sf(1.0, params[mu], params[sd]))
    return math.nan


def _params(row: dict) -> dict:
    try:
        return json.loads(row.get("guide_params") or "{}")
    except (TypeError, ValueError):
        return {}


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def failed_seeds(rows: pd.DataFrame) -> pd.Series:
    """Per row: a failed fit, a non-finite loss anywhere in its trace or a fail verdict."""
    verdict = rows.get("verdict", pd.Series("", index=rows.index)).astype(str)
    return ((rows["status"] == "failed") | (_num(rows, "nan_count").fillna(0) > 0)
            | ((rows["status"] == "ok") & (verdict == "fail")))


def _record(model: str, method: str, mine: pd.DataFrame) -> dict:
    ran = mine[mine["status"].isin(["ok", "failed"])]
    ok = mine[mine["status"] == "ok"]
    bad = int(failed_seeds(ran).sum())
    nonfinite = int((_num(ran, "nan_count").fillna(0) > 0).sum())
    n = int(len(ran))
    w1, w1_se = stats.mean_se(_num(ok, "w1_max"))
    nan_log, nan_log_se = stats.mean_se(np.log1p(_num(ran, "nan_count")))
    outside = [outside_mass(_params(r)) for r in ok.to_dict("records")]
    record = {"model": model, "method": method, "variant": str(mine["variant"].iloc[0]),
              "n_seeds": int(len(mine)), "n_ran": n, "n_ok": int(len(ok)),
              "n_failed": int((mine["status"] == "failed").sum()),
              "n_missing": int((mine["status"] == "missing").sum()),
              "n_nonfinite": nonfinite,
              "n_fail_verdict": int((ok.get("verdict", pd.Series(dtype=str)).astype(str)
                                     == "fail").sum()),
              "n_bad": bad, "bad_frac": bad / n if n else math.nan,
              "nan_median": stats.median(ran, "nan_count"), "nan_log": nan_log,
              "outside_mass": float(np.mean(outside)) if len(outside) and np.isfinite(
                  outside).all() else math.nan,
              "nan_log_se": nan_log_se,
              "w1_max": w1, "w1_max_se": w1_se, "w1_max_floor": stats.median(ok, "w1_max_floor"),
              "verdict": stats.worst_verdict(list(ok.get("verdict", []))),
              "num_steps": stats.median(ok, "num_steps"),
              "failure": str(mine.loc[mine["status"] == "failed", "error"].iloc[0])
              if (mine["status"] == "failed").any() and "error" in mine.columns else ""}
    record["bad_lo"], record["bad_hi"] = stats.wilson(bad, n)
    record["nonfinite_lo"], record["nonfinite_hi"] = stats.wilson(nonfinite, n)
    return record


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, guide); a matched guide's row carries the mismatched guide's
    comparison with it (``rate_finding``, ``w1_finding``)."""
    if rows.empty or "variant" not in rows.columns:
        return pd.DataFrame()
    records = [_record(model, method, mine)
               for (model, method), mine in rows.groupby(["model", "method"], sort=False)]
    out = pd.DataFrame(records)
    out["rate_finding"], out["w1_finding"], out["nan_finding"] = "", "", ""
    pairs = [(i, j) for i, r in out.iterrows() if r["variant"] == MATCHED
             for j in out.index[(out["model"] == r["model"]) & (out["variant"] == MISMATCHED)]]
    tests = 2 * max(len(pairs), 1)  # two t decisions per pair: non-finite losses and W1
    for i, j in pairs:
        mis, mat = out.loc[j], out.loc[i]
        apart = stats.intervals_apart((mis["bad_lo"], mis["bad_hi"]),
                                      (mat["bad_lo"], mat["bad_hi"]))
        out.loc[i, "rate_finding"] = {1: MORE, -1: FEWER, 0: SAME}.get(apart, UNDECIDED)
        se = math.hypot(np.nan_to_num(mis["w1_max_se"]), np.nan_to_num(mat["w1_max_se"]))
        df = min(mis["n_ok"], mat["n_ok"]) - 1
        sign = stats.decide(mis["w1_max"] - mat["w1_max"], se, df, tests)
        out.loc[i, "w1_finding"] = {1: WORSE, -1: BETTER, 0: AS_WELL}.get(
            sign, "no decision on agreement")
        se = math.hypot(np.nan_to_num(mis["nan_log_se"]), np.nan_to_num(mat["nan_log_se"]))
        sign = stats.decide(mis["nan_log"] - mat["nan_log"], se,
                            min(mis["n_ran"], mat["n_ran"]) - 1, tests)
        out.loc[i, "nan_finding"] = {1: MORE_NAN, -1: FEWER_NAN, 0: SAME_NAN}.get(
            sign, "no decision on non-finite losses")
    out["tests"] = tests
    return out


def _guide_text(r: pd.Series) -> str:
    n = int(r["n_ran"])
    text = (f"{r['method']} ({r['variant']}) fails {int(r['n_bad'])} of {n} seeds (95% Wilson "
            f"{stats.fmt(r['bad_lo'], 2)}-{stats.fmt(r['bad_hi'], 2)}: {int(r['n_failed'])} "
            f"failed fits, {int(r['n_nonfinite'])} with non-finite losses, "
            f"{int(r['n_fail_verdict'])} fail verdicts; median {stats.fmt(r['nan_median'])} "
            f"non-finite losses per seed in {stats.fmt(r['num_steps'])} steps); W1 of the "
            f"{int(r['n_ok'])} that ran "
            f"{stats.pm(r['w1_max'], r['w1_max_se'])} reference sd (floor "
            f"{stats.fmt(r['w1_max_floor'])})")
    if np.isfinite(r.get("outside_mass", math.nan)):
        text += (f"; its fitted Normal puts {stats.fmt(r['outside_mass'], 2)} of its mass "
                 "outside [0, 1] (mean over seeds)")
    if r["failure"]:
        text += f"; first failure: {r['failure']}"
    return text


def _harmed(g: pd.DataFrame) -> bool | None:
    """Whether the mismatched guide did worse than some matched one beyond the noise (None: no
    comparison could be decided)."""
    matched = g[g["variant"] == MATCHED]
    findings = [*matched["rate_finding"], *matched["w1_finding"], *matched["nan_finding"]]
    if any(f in (MORE, WORSE, MORE_NAN) for f in findings):
        return True
    decided = (SAME, AS_WELL, FEWER, BETTER, SAME_NAN, FEWER_NAN)
    return False if any(f in decided for f in findings) else None


def answer(derived: pd.DataFrame) -> str:
    """Per model the document's claim, each guide's failures and agreement, and the mismatched
    guide against each matched one, with whether the data agree."""
    if derived.empty:
        return "No runs of this study are in the results."
    tests = int(derived["tests"].iloc[0])
    seeds = derived.loc[derived["n_ok"] > 1, "n_ok"]
    df = int(seeds.min()) - 1 if len(seeds) else 0
    parts = [f'The document (001): a guide whose support does not match "{QUOTE}". Rules: a '
             "guide fails more often when the 95% Wilson intervals of the failure rates do not "
             "overlap; it has more non-finite losses (mean of log(1 + count) per seed) or agrees "
             "worse (mean W1) when the difference is beyond the Student-t multiple of its se, "
             "n - 1 degrees of freedom for the guide with fewer seeds that ran "
             f"({stats.rule(df, tests)})."]
    for model, g in derived.groupby("model", sort=False):
        claim, expects_harm = CLAIMS.get(model, ("", True))
        harmed = _harmed(g)
        mis = g[g["variant"] == MISMATCHED]
        comparisons = [f"against {r['method']} it {r['rate_finding']}, {r['nan_finding']} and "
                       f"{r['w1_finding']}" for _, r in g[g["variant"] == MATCHED].iterrows()]
        if harmed is None:
            verdict = "no comparison could be decided"
        elif harmed == expects_harm:
            verdict = "the data agree"
        else:
            verdict = "the data do not agree"
        name = mis["method"].iloc[0] if len(mis) else "the mismatched guide"
        text = (f"{model}: the document says \"{claim}\"; {verdict} ({name} "
                + ("; ".join(comparisons) if comparisons else "has no matched counterpart here")
                + "). " + "; ".join(_guide_text(r) for _, r in g.iterrows()) + "."
                + (f" {NOTES[model]}" if model in NOTES else ""))
        parts.append(text)
    return " ".join(parts) + stats.coverage_note(derived)


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Failure rates with Wilson intervals and each seed's W1, per model and guide."""
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(derived["model"])) if len(derived) else []
    fig, axes = plt.subplots(3, max(len(models), 1), figsize=(5 * max(len(models), 1), 9),
                             squeeze=False)
    x = np.linspace(-0.25, 1.25, 601)
    ok = rows[rows["status"] == "ok"] if len(rows) and "status" in rows.columns else rows
    for c, model in enumerate(models):
        g = derived[derived["model"] == model].reset_index(drop=True)
        for i, r in g.iterrows():
            color = "C3" if r["variant"] == MISMATCHED else "C0"
            lo, hi = r["bad_lo"], r["bad_hi"]
            axes[0, c].errorbar([i], [r["bad_frac"]], yerr=[[r["bad_frac"] - lo],
                                                            [hi - r["bad_frac"]]],
                                fmt="o", color=color, capsize=4)
            w1 = _num(ok[(ok["model"] == model) & (ok["method"] == r["method"])], "w1_max")
            axes[1, c].plot(np.full(len(w1), i), w1, "o", color=color, alpha=0.5, ms=4)
            axes[1, c].plot([i - 0.3, i + 0.3], [r["w1_max_floor"]] * 2, color="0.5", lw=2)
        for ax in axes[:2, c]:
            ax.set_xticks(range(len(g)), list(g["method"]), fontsize=8)
            ax.set_xlim(-0.5, len(g) - 0.5)
            ax.grid(alpha=0.3)
        _densities(axes[2, c], model, g, ok, x)
        axes[0, c].set(title=model, ylim=(-0.05, 1.05), ylabel="share of seeds failing")
        axes[1, c].set(ylabel="W1 (reference sd)")
        axes[1, c].set_yscale("log")
    fig.tight_layout()
    return fig


def _densities(ax, model: str, g: pd.DataFrame, ok: pd.DataFrame, x: np.ndarray) -> None:
    """The document's figure: each seed's fitted density of the [0, 1] parameter per guide (for
    coin over the exact posterior's histogram), the support's edges dashed."""
    site = PARAMETER.get(model, "")
    if model == "coin":
        from svi_bench.models import REGISTRY

        spec = REGISTRY[model]
        ds = spec.data_for(spec.data_key())
        truth = spec.exact_sampler(np.random.default_rng(0), 20000, ds)[site]
        ax.hist(truth, bins=60, density=True, color="0.8", label="exact posterior")
    styles = ("-", "--", ":")
    for k, (_, r) in enumerate(g.iterrows()):
        color = "C3" if r["variant"] == MISMATCHED else "C0"
        mine = ok[(ok["model"] == model) & (ok["method"] == r["method"])]
        for i, row in enumerate(mine.to_dict("records")):
            y = q_density(_params(row), site, x)
            if y is not None:
                ax.plot(x, y, styles[k % 3], color=color, lw=0.8, alpha=0.6,
                        label=r["method"] if i == 0 else None)
    for edge in (0, 1):
        ax.axvline(edge, color="k", ls="--", lw=1)
    ax.set(xlabel=f"{site} (support [0, 1])", ylabel="fitted density, per seed")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
