"""Pass / warn / fail for one approximation, from its agreement metrics and their noise floors.

A metric is judged on its *excess over the Monte Carlo noise floor*. With ``dev`` its distance
from the ideal value (``metrics.deviation``: 0.9 is subtracted from the q90 masses) and
``floor`` its noise floor (``metrics.noise_floor``, 0 if not given):

* ``dev <= FLOOR_MARGIN * floor + FLOOR_EPS``: indistinguishable from noise, never triggers;
* otherwise ``excess = sqrt(dev**2 - floor**2)`` (noise adds roughly in quadrature to a real
  error) is compared with the metric's warn and fail thresholds (``excess > threshold``).

The verdict is the worst level reached; the reason names every metric at that level.

A verdict answers one question: does this posterior agree with the trusted reference? So it
rests on the agreement metrics (predictive ones for models judged in predictive space) and never
on PSIS k-hat (policy ``VERDICT_POLICY`` 2). k-hat is a reference-free *diagnostic*: it stays a
column (``psis_khat``), the leaderboard shows it beside the verdict with its own badge
(``khat_level``: above ``KHAT_GOOD`` 0.5 doubtful, above ``KHAT_UNRELIABLE`` 0.7 unreliable;
Yao et al. 2018), and the ``diagnostics`` study measures how well it predicts the verdict. Under
policy 1 k-hat was judged too (warn 0.5, fail 0.7); it failed AutoNormal on ``coin`` while every
marginal metric sat at its noise floor (a k-hat of 1.02 in float32 is 0.57 in float64: round-off
in log p - log q). Rows carry the policy they were judged under (``verdict_policy``); the report
re-judges older rows from their stored metrics (``benchmarks.scoring.rejudge``).

Thresholds (``THRESHOLDS``, on the excess; ``pred_prob_mad`` has no floor):

=======================  ======  ======  ==================================================
metric                   warn    fail    why
=======================  ======  ======  ==================================================
std_mean_err_max         0.2     0.5     mean off by a fifth / half a posterior sd
sd_log_ratio_max         0.140   0.405   some sd off by 15% / 50% (log 1.15, log 1.5)
w1_max                   0.2     0.5     W1/sd >= standardised mean error: same scale
joint_sliced_w1          0.2     0.5     equals W1/sd in one dimension: same scale
corr_err_max             0.1     0.3     a correlation off by 0.1 / 0.3
ref_mass_in_q90_worst    0.05    0.15    |mass - 0.9|: a 90% interval holding < 85% / 75%
pred_prob_mad            0.02    0.05    predictive probabilities off by 2 / 5 points
=======================  ======  ======  ==================================================

The q90 band matches the sd band for a too-narrow Gaussian: sd ratio 1/1.15 puts 84.7% of the
reference in q's 90% interval, 1/1.5 puts 72.7%. Averages (``*_mean``) and ``sd_ratio_worst``
are reported but not judged: the maxima above already cover them.

Missing or NaN metrics are skipped, except that ``approx_nonfinite_frac > 0`` (the approximation
produced non-finite draws, so ``metrics.agreement`` returned NaN) is an immediate "fail".
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from svi_bench.benchmarks.scoring.metrics import deviation

#: metric -> (warn, fail) thresholds on the excess over the noise floor; see the module table.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "std_mean_err_max": (0.2, 0.5),
    "sd_log_ratio_max": (math.log(1.15), math.log(1.5)),
    "w1_max": (0.2, 0.5),
    "joint_sliced_w1": (0.2, 0.5),
    "corr_err_max": (0.1, 0.3),
    "ref_mass_in_q90_worst": (0.05, 0.15),
    "pred_prob_mad": (0.02, 0.05),
}

#: The verdict policy rows are judged under (column ``verdict_policy``): 1 judged k-hat as a
#: metric (warn 0.5, fail 0.7); 2 (current) judges agreement only, k-hat is a diagnostic.
VERDICT_POLICY = 2

#: PSIS k-hat levels (Yao et al. 2018), the one place they are declared: at most KHAT_GOOD the
#: importance weights are reliable, above KHAT_UNRELIABLE importance sampling from q is not.
KHAT_GOOD = 0.5
KHAT_UNRELIABLE = 0.7


def khat_level(khat: float | None) -> str:
    """"good" (<= 0.5), "doubtful" (<= 0.7), "unreliable" (> 0.7, +inf) or "" (missing / NaN).

    A diagnostic of q's tails, never part of the verdict."""
    if khat is None or math.isnan(float(khat)):
        return ""
    k = float(khat)
    return "good" if k <= KHAT_GOOD else "doubtful" if k <= KHAT_UNRELIABLE else "unreliable"


#: A metric within FLOOR_MARGIN * floor + FLOOR_EPS of its ideal never triggers.
FLOOR_MARGIN = 2.0
FLOOR_EPS = 1e-9


def _finite(x: float | None) -> bool:
    return x is not None and not math.isnan(float(x))


def verdict(
    metrics: Mapping[str, float],
    floors: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """("pass" | "warn" | "fail", reason) from ``THRESHOLDS`` applied to excess over the floor.

    ``floors`` uses ``noise_floor`` keys (``<metric>_floor``). Keys outside ``THRESHOLDS``
    (``psis_khat`` among them) are ignored: they are diagnostics, not agreement.
    """
    nonfinite = metrics.get("approx_nonfinite_frac")
    if _finite(nonfinite) and nonfinite > 0:
        return "fail", (
            f"approximation produced non-finite draws ({nonfinite:.1%} of draws); "
            "agreement metrics are NaN"
        )

    values = dict(metrics)
    floors = floors or {}

    hits: dict[str, list[str]] = {"warn": [], "fail": []}
    checked, skipped = 0, []
    for key, (warn_at, fail_at) in THRESHOLDS.items():
        if key not in values:
            continue
        value = values[key]
        if not _finite(value):
            skipped.append(key)
            continue
        checked += 1
        floor = floors.get(f"{key}_floor", 0.0)
        floor = float(floor) if _finite(floor) else 0.0
        dev = deviation(key, value)
        if dev <= FLOOR_MARGIN * floor + FLOOR_EPS:
            continue
        excess = math.sqrt(max(dev * dev - floor * floor, 0.0)) if floor > 0 else dev
        level = "fail" if excess > fail_at else "warn" if excess > warn_at else None
        if level:
            shown = f"{key}={value:.3g}"
            if floor > 0:
                shown += f" (floor {floor:.2g})"
            limit = fail_at if level == "fail" else warn_at
            hits[level].append(f"{shown} beyond {level} threshold {limit:.3g}")

    note = f"; skipped NaN: {', '.join(skipped)}" if skipped else ""
    for level in ("fail", "warn"):
        if hits[level]:
            return level, "; ".join(hits[level]) + note
    if checked == 0:
        return "pass", "no metric to judge" + note
    return "pass", f"all {checked} judged metrics within thresholds or noise floor" + note
