"""The verdict separates exact approximations from wrong ones, on excess over the noise floor."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

from svi_bench.benchmarks.scoring import verdict as verdict_module  # noqa: E402
from svi_bench.benchmarks.scoring.metrics import METRIC_INFO, agreement, noise_floor  # noqa: E402
from svi_bench.benchmarks.scoring.verdict import (  # noqa: E402
    FLOOR_MARGIN,
    KHAT_GOOD,
    KHAT_UNRELIABLE,
    THRESHOLDS,
    khat_level,
    verdict,
)

CORR_SIGMA = np.array([[5.0, 4.0], [4.0, 5.0]])  # marginal sd sqrt(5), correlation 0.8
MEAN_FIELD_SD = 1 / math.sqrt(np.linalg.inv(CORR_SIGMA)[0, 0])  # AutoNormal's fit: 1.342


def judge(approx: np.ndarray, ref: np.ndarray, seed: int = 0) -> tuple[str, str]:
    floors = noise_floor(ref, len(approx), np.random.default_rng(seed), repeats=5)
    return verdict(agreement(approx, ref), floors)


def test_thresholds_are_documented_and_ordered():
    doc = verdict_module.__doc__
    for key, (warn_at, fail_at) in THRESHOLDS.items():
        assert key in METRIC_INFO, key
        assert 0 < warn_at < fail_at, key
        assert key in doc, key
    assert THRESHOLDS["sd_log_ratio_max"] == (math.log(1.15), math.log(1.5))
    assert "psis_khat" not in THRESHOLDS  # a diagnostic, not an agreement metric
    assert (KHAT_GOOD, KHAT_UNRELIABLE) == (0.5, 0.7)


@pytest.fixture(scope="module")
def correlated():
    rng = np.random.default_rng(41)
    n = 8000
    ref = rng.multivariate_normal([0.0, 0.0], CORR_SIGMA, size=2 * n)
    full = rng.multivariate_normal([0.0, 0.0], CORR_SIGMA, size=n)
    mean_field = rng.normal(0.0, MEAN_FIELD_SD, size=(n, 2))
    return ref, full, mean_field


def test_mean_field_on_correlated_gaussian_fails(correlated):
    ref, _, mean_field = correlated
    level, reason = judge(mean_field, ref)
    assert level == "fail"
    for key in ("corr_err_max", "sd_log_ratio_max", "ref_mass_in_q90_worst"):
        assert key in reason
    assert "std_mean_err_max" not in reason


def test_full_covariance_draws_pass(correlated):
    ref, full, _ = correlated
    level, reason = judge(full, ref)
    assert level == "pass", reason


@pytest.mark.parametrize("seed", range(4))
def test_exact_samples_pass(seed):
    rng = np.random.default_rng(seed)
    ref, approx = rng.beta(13, 9, size=(4000, 1)), rng.beta(13, 9, size=(4000, 1))
    with pytest.warns(UserWarning, match="halves"):
        assert judge(approx, ref, seed)[0] == "pass"


@pytest.fixture(scope="module")
def normal_pair():
    rng = np.random.default_rng(43)
    return rng.standard_normal((4000, 1)), rng.standard_normal((8000, 1))


@pytest.mark.parametrize(
    ("shift", "scale", "level", "names"),
    [
        (0.3, 1.0, "warn", ["std_mean_err_max", "w1_max", "max_sliced_w1"]),
        (0.7, 1.0, "fail", ["std_mean_err_max", "w1_max", "max_sliced_w1"]),
        (0.0, 1 / 1.25, "warn", ["sd_log_ratio_max", "ref_mass_in_q90_worst"]),
        (0.0, 0.6, "fail", ["sd_log_ratio_max", "ref_mass_in_q90_worst"]),
        (0.0, 1.3, "warn", ["sd_log_ratio_max"]),
        (0.05, 1.05, "pass", []),
    ],
)
def test_known_distortions_get_the_documented_level(normal_pair, shift, scale, level, names):
    approx, ref = normal_pair
    got, reason = judge(shift + scale * approx, ref)
    assert got == level, reason
    for key in names:
        assert key in reason


def test_nonfinite_draws_fail_with_a_clear_reason():
    rng = np.random.default_rng(47)
    approx, ref = rng.normal(size=(100, 2)), rng.normal(size=(100, 2))
    approx[0, 0] = np.nan
    level, reason = verdict(agreement(approx, ref))
    assert level == "fail" and "non-finite draws (1.0% of draws)" in reason


def test_nan_metric_without_nonfinite_draws_is_skipped():
    level, reason = verdict({"std_mean_err_max": 0.01, "corr_err_max": math.nan})
    assert level == "pass" and "skipped NaN: corr_err_max" in reason
    assert verdict({}) == ("inconclusive", "no metric to judge")


def test_within_the_floor_margin_never_triggers():
    floors = {"std_mean_err_max_floor": 0.28}  # below 0.5 / sqrt(3): it could still fail
    assert 0.55 < FLOOR_MARGIN * 0.28
    assert verdict({"std_mean_err_max": 0.55}, floors)[0] == "pass"
    assert verdict({"std_mean_err_max": 0.55})[0] == "fail"


def test_excess_over_floor_is_judged_in_quadrature():
    # dev 0.55 > 2 * 0.25, excess sqrt(0.55^2 - 0.25^2) = 0.49: warn, not fail.
    level, reason = verdict({"std_mean_err_max": 0.55}, {"std_mean_err_max_floor": 0.25})
    assert level == "warn" and "floor 0.25" in reason


@pytest.mark.parametrize(
    ("mass", "level"), [(0.72, "fail"), (0.84, "warn"), (0.93, "pass"), (0.999, "warn")]
)
def test_q90_mass_is_judged_by_distance_from_nominal(mass, level):
    assert verdict({"ref_mass_in_q90_worst": mass})[0] == level


@pytest.mark.parametrize("khat", [0.3, 0.6, 1.02, 4.5, math.inf, math.nan])
def test_khat_never_changes_the_verdict(khat):
    """AutoNormal on coin: every metric at its floor and k-hat 1.02 (0.57 in float64): pass."""
    at_floor = {"w1_max": 0.034, "std_mean_err_max": 0.03, "psis_khat": khat}
    floors = {"w1_max_floor": 0.025, "std_mean_err_max_floor": 0.025}
    level, reason = verdict(at_floor, floors)
    assert level == "pass" and "psis_khat" not in reason and "skipped" not in reason
    assert verdict({**at_floor, "w1_max": 0.9}, floors)[0] == "fail"


@pytest.mark.parametrize(("khat", "level"), [
    (-math.inf, "good"), (0.3, "good"), (0.5, "good"), (0.6, "doubtful"), (0.7, "doubtful"),
    (0.71, "unreliable"), (math.inf, "unreliable"), (math.nan, ""), (None, "")])
def test_khat_level_is_the_diagnostic_badge(khat, level):
    assert khat_level(khat) == level


def test_worst_level_wins_and_reason_names_only_that_level():
    level, reason = verdict({"std_mean_err_max": 0.3, "w1_max": 0.6})
    assert level == "fail" and "w1_max" in reason and "std_mean_err_max" not in reason


def test_predictive_agreement_thresholds():
    assert verdict({"pred_prob_mad": 0.03})[0] == "warn"
    assert verdict({"pred_prob_mad": 0.03}, {"pred_prob_mad_floor": 0.02})[0] == "pass"
    assert verdict({"pred_prob_mad": 0.08})[0] == "fail"


def _stored(**row) -> dict:
    """A scored ok row as a results table stores it (no verdict_policy: policy 1)."""
    return {"model": "coin", "method": "autonormal", "seed": 0, "status": "ok", **row}


def test_old_rows_are_rejudged_from_their_stored_metrics():
    """A results folder written under policy 1 never shows its k-hat verdicts as current: the
    k-hat fail becomes pass, a failed reference stays named, a metric fail stays fail, a NUTS row
    keeps its own diagnostics, and rows with nothing to re-judge keep what they stored."""
    import pandas as pd

    from svi_bench.benchmarks.scoring.rejudge import current_verdicts
    from svi_bench.benchmarks.scoring.verdict import VERDICT_POLICY

    khat_fail = "psis_khat=1.02 beyond fail threshold 0.7"
    df = pd.DataFrame([
        _stored(psis_khat=1.02, w1_max=0.034, w1_max_floor=0.025, verdict="fail",
                verdict_reason=khat_fail),
        _stored(seed=1, psis_khat=1.3, pred_prob_mad=0.03, pred_prob_mad_floor=0.001,
                verdict="fail", verdict_reason=f"reference failed its checks (5 divergences "
                f"(target 0.98)); {khat_fail}; pred_prob_mad=0.03 beyond fail"),
        _stored(seed=2, psis_khat=0.9, w1_max=0.9, w1_max_floor=0.02, verdict="fail",
                verdict_reason="w1_max=0.9 beyond fail threshold 0.5"),
        _stored(method="nuts", w1_max=0.01, w1_max_floor=0.02, divergences=3, max_rhat=1.0,
                verdict="warn", verdict_reason="3 divergences"),
        _stored(seed=3, verdict="fail", verdict_reason="no reference posterior"),
        _stored(seed=4, verdict="", verdict_reason="evaluation failed: boom"),
        _stored(seed=5, status="not_applicable"),
        _stored(seed=6, psis_khat=0.9, w1_max=0.9, verdict="fail"),  # no reason stored
    ])
    new, summary = current_verdicts(df)
    assert list(new["verdict"].fillna("")) == ["pass", "warn", "fail", "warn", "fail", "", "",
                                               "fail"]
    assert new["verdict_reason"][1].startswith(
        "reference failed its checks (5 divergences (target 0.98)); marginal warn: "
        "pred_prob_mad=0.03")
    assert "psis_khat" not in "".join(new["verdict_reason"].fillna(""))
    assert list(new["stored_verdict"].fillna("")) == ["fail", "fail", "fail", "warn", "fail", "",
                                                       "", "fail"]
    assert list(new["verdict_policy"].fillna(0)) == [VERDICT_POLICY] * 5 + [0, 0, VERDICT_POLICY]
    assert summary.n_rejudged == 6 and summary.changes == {("fail", "pass"): 1,
                                                           ("fail", "warn"): 1}
    assert "6 verdicts were stored under verdict policy 1" in summary.note
    assert "and are shown re-judged under policy 3" in summary.note
    assert "2 changed (fail → pass: 1, fail → warn: 1)" in summary.note
    again, second = current_verdicts(new)  # idempotent: nothing left to re-judge
    assert second.note == "" and list(again["verdict"].fillna("")) == list(new["verdict"].fillna(""))


def test_rows_of_the_current_policy_are_shown_as_stored():
    import pandas as pd

    from svi_bench.benchmarks.scoring.rejudge import current_verdicts
    from svi_bench.benchmarks.scoring.verdict import VERDICT_POLICY

    df = pd.DataFrame([_stored(psis_khat=1.02, w1_max=0.9, verdict="warn", verdict_reason="kept",
                               verdict_policy=VERDICT_POLICY)])
    new, summary = current_verdicts(df)
    assert (new["verdict"][0], new["verdict_reason"][0]) == ("warn", "kept")
    assert summary.n_rejudged == 0 and summary.note == ""


# --- policy 3: inconclusive, two verdicts, reasons that name the site and the shape ------------


def test_a_floor_too_large_to_fail_is_inconclusive_not_pass():
    """A floor of 0.35 on std_mean_err_max (fail 0.5): within 2x floor = 0.7 it never
    triggers, and 0.7 is beyond sqrt(0.5^2 + 0.35^2) = 0.61, the deviation needed to fail:
    the metric could not fail whatever the draws, so it cannot pass the row either."""
    from svi_bench.benchmarks.scoring.verdict import judge

    floors = {"std_mean_err_max_floor": 0.35}
    level, reason = verdict({"std_mean_err_max": 0.6}, floors)
    assert level == "inconclusive", reason
    assert "std_mean_err_max (floor 0.35" in reason
    # beyond the margin it still fails: an inconclusive metric can fail a row, never pass it
    assert verdict({"std_mean_err_max": 0.9}, floors)[0] == "fail"
    # a conclusive metric beside it passes the group, and the reason lists the inconclusive one
    j = judge({"std_mean_err_max": 0.6, "w1_max": 0.05}, {**floors, "w1_max_floor": 0.03})
    assert (j.level, j.marginal) == ("pass", "pass")
    assert "inconclusive: std_mean_err_max" in j.reason
    # the threshold of inconclusiveness: floor >= fail / sqrt(FLOOR_MARGIN^2 - 1)
    edge = 0.5 / math.sqrt(FLOOR_MARGIN**2 - 1)
    assert verdict({"std_mean_err_max": 0.0}, {"std_mean_err_max_floor": edge * 1.01})[0] == \
        "inconclusive"
    assert verdict({"std_mean_err_max": 0.0}, {"std_mean_err_max_floor": edge * 0.99})[0] == "pass"


def test_an_uncomputable_floor_makes_its_metric_inconclusive():
    """c2st_acc's floor is NaN below 2 draws a half (a sampler's ESS of 4): its noise is unknown,
    so the metric neither passes nor triggers."""
    level, reason = verdict({"c2st_acc": 0.58}, {"c2st_acc_floor": math.nan})
    assert level == "inconclusive" and "c2st_acc (noise floor not computable)" in reason


def test_marginal_and_joint_verdicts_are_apart_and_the_worse_is_the_verdict(correlated):
    """Independent draws with the exact marginal sds of a 0.8-correlated Gaussian: every marginal
    metric passes, the dependence fails; the reason leads with the joint group, names the pair,
    and says the marginals passed."""
    from svi_bench.benchmarks.scoring.verdict import judge

    ref, _, _ = correlated
    q = np.random.default_rng(3).normal(0.0, math.sqrt(5.0), size=(8000, 2))
    floors = noise_floor(ref, len(q), np.random.default_rng(0), repeats=5)
    j = judge(agreement(q, ref, ["x", "y"]), floors)
    assert (j.level, j.marginal, j.joint) == ("fail", "pass", "fail"), j.reason
    assert j.reason.startswith("joint fail: corr_err_max=0.8")
    assert "at x ~ y" in j.reason and "c2st_acc=" in j.reason
    assert "marginal pass: all 4 conclusive metrics" in j.reason


@pytest.mark.parametrize(("scale", "shift", "shape"), [
    (0.6, 0.0, "too narrow"), (1.6, 0.0, "too wide"), (1.0, 0.8, "shifted")])
def test_the_reason_names_the_deciding_component_and_its_shape(normal_pair, scale, shift, shape):
    """One of three components distorted: the reason says which (by name) and how."""
    approx, ref = normal_pair
    rng = np.random.default_rng(4)
    ref3 = np.column_stack([ref, rng.standard_normal((len(ref), 2))])
    q = np.column_stack([approx, rng.standard_normal((len(approx), 2))])
    q[:, 2] = shift + scale * q[:, 2]
    floors = noise_floor(ref3, len(q), np.random.default_rng(0), repeats=3)
    level, reason = verdict(agreement(q, ref3, ["a", "b", "c"]), floors)
    assert level == "fail", reason
    assert reason.startswith("marginal fail") and f"at c ({shape})" in reason, reason
    assert "at a " not in reason and "at b " not in reason


def test_policy_2_rows_are_rejudged_on_what_they_have():
    """A policy-2 row failed on joint_sliced_w1 (no longer judged) and lacking the new joint
    metrics: re-judged from its marginal metrics and correlation alone; a policy-2 row whose
    only metric's floor could not fail becomes inconclusive."""
    import pandas as pd

    from svi_bench.benchmarks.scoring.rejudge import current_verdicts

    df = pd.DataFrame([
        _stored(w1_max=0.05, w1_max_floor=0.03, joint_sliced_w1=0.6, corr_err_max=0.02,
                corr_err_max_floor=0.01, verdict="fail", verdict_policy=2,
                verdict_reason="joint_sliced_w1=0.6 beyond fail threshold 0.5"),
        _stored(seed=1, w1_max=0.3, w1_max_floor=0.35, verdict="pass", verdict_policy=2,
                verdict_reason="all 1 judged metrics within thresholds or noise floor"),
    ])
    new, summary = current_verdicts(df)
    assert list(new["verdict"]) == ["pass", "inconclusive"]
    assert list(new["verdict_marginal"]) == ["pass", "inconclusive"]
    assert list(new["verdict_joint"].fillna("")) == ["pass", ""]
    assert summary.changes == {("fail", "pass"): 1, ("pass", "inconclusive"): 1}
    assert "policy 2 (2: no inconclusive verdict" in summary.note
