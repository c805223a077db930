"""Pass / warn / fail for one approximation, from its agreement metrics and their noise floors.

A metric is judged on its *excess over the Monte Carlo noise floor*. With ``dev`` its distance
from the ideal value (``metrics.deviation``: 0.9 is subtracted from the q90 masses) and
``floor`` its noise floor (``metrics.noise_floor``, 0 if not given):

* ``dev <= FLOOR_MARGIN * floor + FLOOR_EPS``: indistinguishable from noise, never triggers;
* otherwise ``excess = sqrt(dev**2 - floor**2)`` (noise adds roughly in quadrature to a real
  error) is compared with the metric's warn and fail thresholds (``excess > threshold``).

The verdict is the worst level reached; the reason names every metric at that level.

Thresholds (``THRESHOLDS``, on the excess; ``psis_khat`` and ``pred_prob_mad`` have no floor):

=======================  ======  ======  ==================================================
metric                   warn    fail    why
=======================  ======  ======  ==================================================
std_mean_err_max         0.2     0.5     mean off by a fifth / half a posterior sd
sd_log_ratio_max         0.140   0.405   some sd off by 15% / 50% (log 1.15, log 1.5)
w1_max                   0.2     0.5     W1/sd >= standardised mean error: same scale
joint_sliced_w1          0.2     0.5     equals W1/sd in one dimension: same scale
corr_err_max             0.1     0.3     a correlation off by 0.1 / 0.3
ref_mass_in_q90_worst    0.05    0.15    |mass - 0.9|: a 90% interval holding < 85% / 75%
psis_khat                0.5     0.7     Yao et al. (2018): > 0.7 unreliable
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
    "psis_khat": (0.5, 0.7),
    "pred_prob_mad": (0.02, 0.05),
}

#: A metric within FLOOR_MARGIN * floor + FLOOR_EPS of its ideal never triggers.
FLOOR_MARGIN = 2.0
FLOOR_EPS = 1e-9


def _finite(x: float | None) -> bool:
    return x is not None and not math.isnan(float(x))


def verdict(
    metrics: Mapping[str, float],
    floors: Mapping[str, float] | None = None,
    khat: float | None = None,
) -> tuple[str, str]:
    """("pass" | "warn" | "fail", reason) from ``THRESHOLDS`` applied to excess over the floor.

    ``floors`` uses ``noise_floor`` keys (``<metric>_floor``); ``khat`` overrides
    ``metrics["psis_khat"]``. k-hat is judged as is (+inf, from non-finite weights, fails).
    """
    nonfinite = metrics.get("approx_nonfinite_frac")
    if _finite(nonfinite) and nonfinite > 0:
        return "fail", (
            f"approximation produced non-finite draws ({nonfinite:.1%} of draws); "
            "agreement metrics are NaN"
        )

    values = dict(metrics)
    if khat is not None:
        values["psis_khat"] = khat
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
        dev = deviation(key, value) if key != "psis_khat" else float(value)
        if key != "psis_khat" and dev <= FLOOR_MARGIN * floor + FLOOR_EPS:
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
