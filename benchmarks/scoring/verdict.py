"""Pass / warn / fail / inconclusive for one approximation, from its agreement metrics and floors.

Two questions, two verdicts, one answer (policy ``VERDICT_POLICY`` 3):

* ``verdict_marginal``: is each component right? (``MARGINAL``: mean, sd, W1, q90 mass; the
  predictive agreement for models judged in predictive space);
* ``verdict_joint``: is the dependence right? (``JOINT``: the worst direction's W1
  ``max_sliced_w1``, the correlation error, the classifier two-sample test ``c2st_acc``);
* ``verdict``: the worse of the two, in the order ``LEVELS`` (pass < inconclusive < warn < fail).

A metric is judged on its *excess over the Monte Carlo noise floor*. With ``dev`` its distance
from the ideal value (``metrics.deviation``: 0.9 is subtracted from the q90 masses, 0.5 from the
C2ST accuracy) and ``floor`` its noise floor (``metrics.noise_floor``, 0 if not given):

* ``dev <= FLOOR_MARGIN * floor + FLOOR_EPS``: indistinguishable from noise, never triggers;
* otherwise ``excess = sqrt(dev**2 - floor**2)`` (noise adds roughly in quadrature to a real
  error) is compared with the metric's warn and fail thresholds (``excess > threshold``).

A metric whose floor is so large that it could not fail whatever the draws (``FLOOR_MARGIN *
floor >= sqrt(fail**2 + floor**2)``, i.e. floor >= fail / sqrt(3): a NUTS run with a bulk ESS of
76 has such floors) is *inconclusive*: it may still fail the row when it triggers, but it cannot
pass it. A group (marginal or joint) with no conclusive metric within its thresholds is
"inconclusive"; a group with no metric at all is not judged (empty). The reason names, for the
deciding metric, the component (or pair, or the components a direction lies along) and whether
q is "shifted", "too narrow" or "too wide" there (``metrics.LOCATION_KEYS``).

A verdict answers one question: does this posterior agree with the trusted reference? So it
rests on the agreement metrics and never on PSIS k-hat. k-hat is a reference-free *diagnostic*: it
stays a column (``psis_khat``), the leaderboard shows it beside the verdict with its own badge
(``khat_level``: above ``KHAT_GOOD`` 0.5 doubtful, above ``KHAT_UNRELIABLE`` 0.7 unreliable;
Yao et al. 2018). Policies: 1 judged k-hat too (warn 0.5, fail 0.7); 2 judged agreement only,
with ``joint_sliced_w1`` as the joint check and no "inconclusive"; 3 (current) is this module.
Rows carry the policy they were judged under (``verdict_policy``); the report re-judges older
rows from their stored metrics (``benchmarks.scoring.rejudge``).

Thresholds (``THRESHOLDS``, on the excess; ``pred_prob_mad`` has no floor):

=======================  ======  ======  ==================================================
metric                   warn    fail    why
=======================  ======  ======  ==================================================
std_mean_err_max         0.2     0.5     mean off by a fifth / half a posterior sd
sd_log_ratio_max         0.140   0.405   some sd off by 15% / 50% (log 1.15, log 1.5)
w1_max                   0.2     0.5     W1/sd >= standardised mean error: same scale
ref_mass_in_q90_worst    0.05    0.15    |mass - 0.9|: a 90% interval holding < 85% / 75%
pred_prob_mad            0.02    0.05    predictive probabilities off by 2 / 5 points
max_sliced_w1            0.2     0.5     W1/sd along the worst direction: same scale as w1
corr_err_max             0.1     0.3     a correlation off by 0.1 / 0.3
c2st_acc                 0.06    0.12    |accuracy - 0.5|: 3.5 / 7 null sds at 1000 draws a
                                         class; mean-field on a 0.8 correlation reads 0.66
=======================  ======  ======  ==================================================

The q90 band matches the sd band for a too-narrow Gaussian: sd ratio 1/1.15 puts 84.7% of the
reference in q's 90% interval, 1/1.5 puts 72.7%. Averages (``*_mean``), ``sd_ratio_worst`` and
``joint_sliced_w1`` are reported but not judged: the maxima above already cover them, and the
sliced mean fades with dimension (a shift of d sd in one of D coordinates reads
d * sqrt(2 / (pi D))), which ``max_sliced_w1`` does not.

Missing or NaN metrics are skipped, except that ``approx_nonfinite_frac > 0`` (the approximation
produced non-finite draws, so ``metrics.agreement`` returned NaN) is an immediate "fail".
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import NamedTuple

from svi_bench.benchmarks.scoring.metrics import deviation

#: metric -> (warn, fail) thresholds on the excess over the noise floor; see the module table.
THRESHOLDS: dict[str, tuple[float, float]] = {
    "std_mean_err_max": (0.2, 0.5),
    "sd_log_ratio_max": (math.log(1.15), math.log(1.5)),
    "w1_max": (0.2, 0.5),
    "ref_mass_in_q90_worst": (0.05, 0.15),
    "pred_prob_mad": (0.02, 0.05),
    "max_sliced_w1": (0.2, 0.5),
    "corr_err_max": (0.1, 0.3),
    "c2st_acc": (0.06, 0.12),
}

#: The judged metrics of each verdict: is each component right, is the dependence right.
MARGINAL: tuple[str, ...] = ("std_mean_err_max", "sd_log_ratio_max", "w1_max",
                             "ref_mass_in_q90_worst", "pred_prob_mad")
JOINT: tuple[str, ...] = ("max_sliced_w1", "corr_err_max", "c2st_acc")
GROUPS: dict[str, tuple[str, ...]] = {"marginal": MARGINAL, "joint": JOINT}

#: Verdict levels from best to worst: the one place their order is declared.
LEVELS: tuple[str, ...] = ("pass", "inconclusive", "warn", "fail")
RANK: dict[str, int] = {level: i for i, level in enumerate(LEVELS)}

#: The verdict policy rows are judged under (column ``verdict_policy``): 1 judged k-hat as a
#: metric (warn 0.5, fail 0.7); 2 judged agreement only (joint check: joint_sliced_w1);
#: 3 (current) judges marginal and joint agreement apart and says when a floor is too large to
#: judge ("inconclusive").
VERDICT_POLICY = 3

#: What each policy judged, for the report's note on re-judged rows.
POLICY_SUMMARY: dict[int, str] = {
    1: "PSIS k-hat judged as a metric",
    2: "no inconclusive verdict, joint check by the mean sliced W1",
    3: "marginal and joint agreement judged apart; inconclusive where a noise floor is too large "
       "to fail; k-hat a diagnostic",
}

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


class Judgement(NamedTuple):
    """The overall verdict with its reason, and the two verdicts it is the worse of ("" where a
    group had no metric to judge)."""

    level: str
    reason: str
    marginal: str
    joint: str


def worst_level(levels: list[str]) -> str:
    """The worst of verdict levels in ``LEVELS`` order ("" for none)."""
    known = [lv for lv in levels if lv in RANK]
    return max(known, key=RANK.__getitem__) if known else ""


def _where(key: str, metrics: Mapping[str, object]) -> str:
    """" at <site> (<shape>)" for a metric's deciding component, from the location columns of
    ``metrics.agreement`` ("" where the row has none: rows stored before policy 3)."""
    def text(name: str) -> str:
        value = metrics.get(name)
        return value if isinstance(value, str) else ""

    site, what = {
        "std_mean_err_max": (text("mean_worst_site"), "shifted"),
        "sd_log_ratio_max": (text("sd_worst_site"),
                             _side(metrics.get("sd_ratio_worst"), 1.0)),
        "w1_max": (text("w1_worst_site"), text("w1_worst_shape")),
        "ref_mass_in_q90_worst": (text("q90_worst_site"),
                                  _side(metrics.get("ref_mass_in_q90_worst"), 0.9)),
        "corr_err_max": (text("corr_worst_pair"), ""),
        "max_sliced_w1": (text("max_sliced_w1_sites"), text("max_sliced_w1_shape")),
    }.get(key, ("", ""))
    if not site:
        return ""
    return f" at {site}" + (f" ({what})" if what else "")


def _side(value: object, ideal: float) -> str:
    """"too narrow" below ``ideal`` (an sd ratio, the reference mass in q's interval), else
    "too wide"; "" when unknown."""
    if not isinstance(value, numbers.Real) or math.isnan(float(value)):
        return ""
    return "too narrow" if float(value) < ideal else "too wide"


def _judge_group(keys: tuple[str, ...], metrics: Mapping[str, object],
                 floors: Mapping[str, float]) -> tuple[str, str, list[str]]:
    """(level, reason, metrics skipped as NaN) of one group; level "" if it has no metric."""
    hits: dict[str, list[str]] = {"warn": [], "fail": []}
    conclusive, inconclusive, skipped = 0, [], []
    for key in keys:
        if key not in metrics:
            continue
        warn_at, fail_at = THRESHOLDS[key]
        value = metrics[key]
        if not _finite(value):
            skipped.append(key)
            continue
        floor = floors.get(f"{key}_floor", 0.0)
        if not _finite(floor):  # measured but not computable (too few draws): noise unknown
            inconclusive.append(f"{key} (noise floor not computable)")
            continue
        floor = float(floor)
        dev = deviation(key, value)
        if dev <= FLOOR_MARGIN * floor + FLOOR_EPS:
            if FLOOR_MARGIN * floor >= math.hypot(fail_at, floor):
                inconclusive.append(f"{key} (floor {floor:.2g}: {FLOOR_MARGIN:g}x floor reaches "
                                    f"the {math.hypot(fail_at, floor):.2g} needed to fail)")
            else:
                conclusive += 1
            continue
        conclusive += 1
        excess = math.sqrt(max(dev * dev - floor * floor, 0.0)) if floor > 0 else dev
        level = "fail" if excess > fail_at else "warn" if excess > warn_at else None
        if level:
            shown = f"{key}={float(value):.3g}"
            if floor > 0:
                shown += f" (floor {floor:.2g})"
            limit = fail_at if level == "fail" else warn_at
            hits[level].append(f"{shown} beyond {level} threshold {limit:.3g}"
                               f"{_where(key, metrics)}")
    for level in ("fail", "warn"):
        if hits[level]:
            return level, "; ".join(hits[level]), skipped
    note = f"; inconclusive: {', '.join(inconclusive)}" if inconclusive else ""
    if conclusive:
        return "pass", (f"all {conclusive} conclusive metrics within thresholds or noise "
                        f"floor{note}"), skipped
    if inconclusive:
        return "inconclusive", f"no conclusive metric{note}", skipped
    return "", "", skipped


def judge(metrics: Mapping[str, object], floors: Mapping[str, float] | None = None) -> Judgement:
    """The marginal and joint verdicts of ``metrics`` (with their ``<metric>_floor`` in
    ``floors``) and the overall one, the worse of the two; the reason leads with the deciding
    group. Keys outside ``THRESHOLDS`` and ``metrics.LOCATION_KEYS`` are ignored (k-hat among
    them: a diagnostic, not agreement)."""
    nonfinite = metrics.get("approx_nonfinite_frac")
    if _finite(nonfinite) and float(nonfinite) > 0:
        reason = (f"approximation produced non-finite draws ({float(nonfinite):.1%} of draws); "
                  "agreement metrics are NaN")
        return Judgement("fail", reason, "fail", "fail")
    floors = floors or {}
    judged = {name: _judge_group(keys, metrics, floors) for name, keys in GROUPS.items()}
    skipped = [key for _, _, s in judged.values() for key in s]
    note = f"; skipped NaN: {', '.join(skipped)}" if skipped else ""
    present = sorted((name for name in GROUPS if judged[name][0]),
                     key=lambda name: -RANK[judged[name][0]])
    if not present:
        return Judgement("inconclusive", "no metric to judge" + note, "", "")
    level = judged[present[0]][0]
    reason = "; ".join(f"{name} {judged[name][0]}: {judged[name][1]}" for name in present)
    return Judgement(level, reason + note, judged["marginal"][0], judged["joint"][0])


def verdict(
    metrics: Mapping[str, float],
    floors: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """(level in ``LEVELS``, reason): the overall verdict of ``judge``."""
    j = judge(metrics, floors)
    return j.level, j.reason
