"""The ``locked_mode`` study's table, answer and figure: pure functions of its rows.

Each final fit ends in one of four places, from the share of q's draws within 3 sd of each mode
along u1: ``both`` (at least ``MIN_SHARE`` in each: the posterior's answer, two equal modes),
``start`` (only the mode it was locked in), ``other`` (only the other mode) or ``neither``. Per
guide and variant: the fraction of seeds covering both with its Wilson interval, the fraction
that left the start mode (``other`` or ``both``), W1 (mean ± se over seeds) against its noise
floor and the verdicts. Tempering frees a guide when its fraction covering both exceeds the
direct fit's beyond the noise (``beyond_noise``: the Wilson intervals do not overlap) and its
agreement is no worse (``agrees_worse``): a broad q straddling both modes covers them without
being the posterior, so covering alone is not freeing.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.studies import stats

DIRECT, TEMPERED = "direct", "tempered"
ORDER = ("autonormal", "autodiagonalnormal", "automvn", "autoiaf", "autobnaf", "autodais")
MIN_SHARE = 0.1
BOTH, START, OTHER, NEITHER = "both", "start", "other", "neither"
FREES, HURTS, SAME = "tempering frees it", "tempering hurts", "no difference"
COVERS_WORSE = "tempering covers both modes but agrees worse"
QUOTE = ("your multimodal distributions get locked into a specific mode that the optimiser "
         "cannot escape and are looking for a way to \"ease into\" the right mode")


def place(start_share: float, other_share: float) -> str:
    """Where a fit ended from the shares of q's draws in the start and the other mode."""
    in_start, in_other = start_share >= MIN_SHARE, other_share >= MIN_SHARE
    return BOTH if in_start and in_other else START if in_start else OTHER if in_other else NEITHER


def beyond_noise(tempered: tuple[float, float], direct: tuple[float, float]) -> str:
    """The decision on two fractions from their Wilson intervals (lo, hi): apart when they do
    not overlap (``stats.intervals_apart``)."""
    return {1: FREES, -1: HURTS}.get(stats.intervals_apart(tempered, direct), SAME)


def agrees_worse(tempered: tuple[float, float], direct: tuple[float, float]) -> bool:
    """Whether the tempered fits' W1 (mean, se) exceeds the direct fits' beyond twice the
    standard error of the difference."""
    (t, t_se), (d, d_se) = tempered, direct
    if not all(np.isfinite(v) for v in (t, d)):
        return False
    se = math.sqrt(np.nan_to_num(t_se) ** 2 + np.nan_to_num(d_se) ** 2)
    return t - d > 2 * se


def _num(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        return pd.Series(np.nan, index=frame.index, dtype=float)
    return pd.to_numeric(frame[column], errors="coerce").astype(float)


def _methods(rows: pd.DataFrame) -> list[str]:
    names = list(dict.fromkeys(rows["method"].astype(str)))
    return sorted(names, key=lambda m: (ORDER.index(m) if m in ORDER else len(ORDER), m))


def derive(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per (guide, variant): where the seeds ended, the fraction covering both and the
    fraction that left the start mode with Wilson intervals, W1 against its floor, verdicts,
    steps; and per guide the finding of tempered against direct."""
    out = []
    if rows.empty or "variant" not in rows.columns:
        return pd.DataFrame(out)
    for method in _methods(rows):
        g = rows[rows["method"].astype(str) == method]
        records = {}
        for variant in (DIRECT, TEMPERED):
            mine = g[g["variant"] == variant]
            ok = mine[mine["status"] == "ok"]
            places = [place(s, o) for s, o in zip(_num(ok, "start_mode_share"),
                                                  _num(ok, "other_mode_share"), strict=True)]
            n = len(mine)
            both, left = places.count(BOTH), places.count(BOTH) + places.count(OTHER)
            record = {"method": method, "variant": variant, "n_seeds": n, "n_ok": len(ok),
                      "n_both": both, "n_start": places.count(START),
                      "n_other": places.count(OTHER), "n_neither": places.count(NEITHER),
                      "n_left_start": left, "n_pass": int((ok.get(
                          "verdict", pd.Series(dtype=str)).astype(str) == "pass").sum()),
                      "w1_max_floor": stats.median(ok, "w1_max_floor"),
                      "verdict": stats.worst_verdict(list(ok.get("verdict", []))),
                      "num_steps": stats.median(ok, "num_steps"),
                      "run_s": stats.median(ok, "run_s"),
                      "n_failed": int((mine["status"] == "failed").sum()),
                      "failure": stats.first_failure(mine)}
            record["both_frac"] = both / n if n else math.nan
            record["both_lo"], record["both_hi"] = stats.wilson(both, n)
            record["left_lo"], record["left_hi"] = stats.wilson(left, n)
            record["w1_max"], record["w1_max_se"] = stats.mean_se(_num(ok, "w1_max"))
            records[variant] = record
        finding = beyond_noise((records[TEMPERED]["both_lo"], records[TEMPERED]["both_hi"]),
                               (records[DIRECT]["both_lo"], records[DIRECT]["both_hi"]))
        if finding == FREES and agrees_worse(
                (records[TEMPERED]["w1_max"], records[TEMPERED]["w1_max_se"]),
                (records[DIRECT]["w1_max"], records[DIRECT]["w1_max_se"])):
            finding = COVERS_WORSE
        for record in records.values():
            out.append({**record, "finding": finding})
    return pd.DataFrame(out)


def _variant_text(r: pd.Series) -> str:
    n = int(r["n_seeds"])
    text = (f"{r['variant']} covers both modes for {int(r['n_both'])} of {n} seeds (95% Wilson "
            f"{stats.fmt(r['both_lo'], 2)}-{stats.fmt(r['both_hi'], 2)}), stays in the start "
            f"mode for {int(r['n_start'])}, moves to the other for {int(r['n_other'])}"
            + (f", neither for {int(r['n_neither'])}" if r["n_neither"] else "")
            + f"; W1 {stats.pm(r['w1_max'], r['w1_max_se'])} reference sd (noise floor "
            f"{stats.fmt(r['w1_max_floor'])}), {int(r['n_pass'])} of {n} pass")
    if r["n_failed"]:
        text += f", {int(r['n_failed'])} failed ({r['failure']})"
    return text


def answer(derived: pd.DataFrame) -> str:
    """A count of guides per finding, then per guide where its seeds ended and how well they
    agree, tempered against direct."""
    if derived.empty:
        return "No runs of this study are in the results."
    per = derived.drop_duplicates("method")
    frees = list(per.loc[per["finding"] == FREES, "method"])
    hurts = list(per.loc[per["finding"] == HURTS, "method"])
    worse = list(per.loc[per["finding"] == COVERS_WORSE, "method"])
    lead = (f"From a start locked in one of two equal modes, tempering (beta rising to 1) covers "
            f"both modes for more seeds than a direct fit with the same steps, beyond the "
            f"binomial noise (disjoint 95% Wilson intervals), for {len(frees)} of {len(per)} "
            f"guides" + (f" ({', '.join(frees)})" if frees else "")
            + (f", for fewer for {len(hurts)} ({', '.join(hurts)})" if hurts else "")
            + ".")
    if worse:
        lead += (f" For {', '.join(worse)} it covers both more often but agrees worse with the "
                 "posterior (W1 beyond twice the se of the difference): a broad q straddling the "
                 "modes, not the posterior.")
    agree = ("the data agree for those guides" if frees else
             "the data do not show it for any guide")
    parts = [f'The document (000): "{QUOTE}"; {agree}.', lead]
    for method in per["method"]:
        g = derived[derived["method"] == method]
        pieces = [_variant_text(r) for v in (TEMPERED, DIRECT)
                  for _, r in g[g["variant"] == v].iterrows()]
        steps = g["num_steps"].max()
        parts.append(f"{method} ({stats.fmt(steps)} steps each): " + "; ".join(pieces) + ".")
    return " ".join(parts)


def _trajectory(text) -> np.ndarray:
    try:
        return np.asarray(json.loads(text), dtype=float).reshape(-1, 5)
    except (TypeError, ValueError):
        return np.empty((0, 5))


def figure(rows: pd.DataFrame, derived: pd.DataFrame):
    """Per stage of the tempered runs: the loss (median over seeds) and q's mean u1 per seed,
    the modes dashed; the direct fits' ends as crosses."""
    import matplotlib.pyplot as plt

    from svi_bench.models.multimodal_2d import B

    fig, axes = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ok = rows[rows["status"] == "ok"] if len(rows) else rows
    for c, method in enumerate(_methods(ok) if len(ok) else []):
        color = colors[c % len(colors)]
        tempered = ok[(ok["method"] == method) & (ok["variant"] == TEMPERED)]
        paths = [_trajectory(t) for t in tempered.get("trajectory", [])]
        paths = [p for p in paths if len(p)]
        for i, p in enumerate(paths):
            stages = np.arange(len(p))
            axes[1].plot(stages, p[:, 2], "-", color=color, alpha=0.5, lw=1,
                         label=method if i == 0 else None)
        if paths:
            n = min(len(p) for p in paths)
            axes[0].plot(np.arange(n), np.median([p[:n, 1] for p in paths], axis=0), ".-",
                         color=color, label=method)
            last = n - 1
            direct = ok[(ok["method"] == method) & (ok["variant"] == DIRECT)]
            axes[0].plot([last] * len(direct), _num(direct, "stage_loss"), "x", color=color,
                         ms=8)
    for sign in (1, -1):
        axes[1].axhline(sign * B, color="k", ls="--", lw=1)
    axes[0].set(ylabel="ELBO loss at stage end", title="tempering out of a locked mode, "
                "multimodal_2d")
    axes[1].set(xlabel="tempering stage (beta rising to 1)", ylabel="q's mean of u1")
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
