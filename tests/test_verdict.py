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
from svi_bench.benchmarks.scoring.verdict import FLOOR_MARGIN, THRESHOLDS, verdict  # noqa: E402

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
    assert THRESHOLDS["psis_khat"] == (0.5, 0.7)


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
        (0.3, 1.0, "warn", ["std_mean_err_max", "w1_max", "joint_sliced_w1"]),
        (0.7, 1.0, "fail", ["std_mean_err_max", "w1_max", "joint_sliced_w1"]),
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
    assert verdict({}) == ("pass", "no metric to judge")


def test_within_the_floor_margin_never_triggers():
    floors = {"std_mean_err_max_floor": 0.35}
    assert 0.6 < FLOOR_MARGIN * 0.35
    assert verdict({"std_mean_err_max": 0.6}, floors)[0] == "pass"
    assert verdict({"std_mean_err_max": 0.6})[0] == "fail"


def test_excess_over_floor_is_judged_in_quadrature():
    # dev 0.55 > 2 * 0.25, excess sqrt(0.55^2 - 0.25^2) = 0.49: warn, not fail.
    level, reason = verdict({"std_mean_err_max": 0.55}, {"std_mean_err_max_floor": 0.25})
    assert level == "warn" and "floor 0.25" in reason


@pytest.mark.parametrize(
    ("mass", "level"), [(0.72, "fail"), (0.84, "warn"), (0.93, "pass"), (0.999, "warn")]
)
def test_q90_mass_is_judged_by_distance_from_nominal(mass, level):
    assert verdict({"ref_mass_in_q90_worst": mass})[0] == level


@pytest.mark.parametrize(
    ("khat", "level"),
    [(0.3, "pass"), (0.6, "warn"), (0.8, "fail"), (math.inf, "fail"), (-math.inf, "pass")],
)
def test_khat_thresholds(khat, level):
    level_got, reason = verdict({"std_mean_err_max": 0.0}, khat=khat)
    assert level_got == level
    if level != "pass":
        assert "psis_khat" in reason


def test_khat_argument_overrides_metrics_and_nan_is_skipped():
    assert verdict({"psis_khat": 0.9}, khat=0.1)[0] == "pass"
    assert verdict({"psis_khat": 0.9})[0] == "fail"
    assert verdict({"psis_khat": math.nan})[0] == "pass"


def test_worst_level_wins_and_reason_names_only_that_level():
    level, reason = verdict({"std_mean_err_max": 0.3, "corr_err_max": 0.5})
    assert level == "fail" and "corr_err_max" in reason and "std_mean_err_max" not in reason


def test_predictive_agreement_thresholds():
    assert verdict({"pred_prob_mad": 0.03})[0] == "warn"
    assert verdict({"pred_prob_mad": 0.03}, {"pred_prob_mad_floor": 0.02})[0] == "pass"
    assert verdict({"pred_prob_mad": 0.08})[0] == "fail"
