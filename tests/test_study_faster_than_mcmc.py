"""The ``faster_than_mcmc`` study (001, linear regression with outliers) and the times it shares
with ``document_budgets`` (``studies.timing``): ratios to NUTS paired by seed on hand-made rows
with known answers, the claim's bands, the plan at the document's settings, and the study end to
end at smoke."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.studies import STUDIES, faster_than_mcmc, timing
from svi_bench.benchmarks.studies.base import plan_study
from svi_bench.benchmarks.studies.faster_than_mcmc import (
    DIAGONAL,
    FULL_RANK,
    NUTS,
    answer,
    claim_check,
    derive,
)


def _row(method: str, seed: int, run_s: float, compile_s: float, cold: bool | None = None,
         shared: int = 1, **extra) -> dict:
    cold = seed == 0 if cold is None else cold
    return {"model": "linreg_outliers", "method": method, "seed": seed, "status": "ok",
            "run_s": run_s, "compile_s": compile_s, "cache": "" if cold else "executable",
            "seeds_in_program": shared, "host_others_share": 0.0, "reference_ok": 1,
            "verdict": "pass", "verdict_marginal": "pass", "verdict_joint": "pass",
            "w1_max": 0.1, "w1_max_floor": 0.05, "corr_err_max": 0.05,
            "corr_err_max_floor": 0.02, "corr_worst_pair": "bg_mean ~ Q", **extra}


# --- timing: ratios to NUTS, paired by seed ---------------------------------------------------


def test_ratios_pair_seeds_and_charge_each_method_its_cold_compile_once():
    rows = pd.DataFrame([
        _row(NUTS, 0, 2.0, 10.0), _row(NUTS, 1, 4.0, 1.0),   # seed 1 loaded the executable
        _row("g", 0, 1.0, 5.0), _row("g", 1, 1.0, 0.5),
    ])
    table = timing.versus_nuts(rows).set_index("method")
    g = table.loc["g"]
    assert g["compile_once_s"] == 5.0 and g["compile_cold"] and g["timed_apart"]
    assert g["speedup_run"] == pytest.approx(3.0) and g["speedup_run_se"] == pytest.approx(1.0)
    # walls: NUTS 10 + 2, 10 + 4; the guide 5 + 1 twice
    assert g["speedup_wall"] == pytest.approx((12 / 6 + 14 / 6) / 2)
    assert g["speedup_wall_n"] == 2
    assert table.loc[NUTS, "speedup_run"] == pytest.approx(1.0)


def test_seeds_sharing_a_program_are_one_timing_without_a_spread():
    rows = pd.DataFrame([_row(NUTS, s, 3.0, 10.0, cold=True, shared=2) for s in (0, 1)]
                        + [_row("g", s, 1.0, 5.0, cold=True, shared=2) for s in (0, 1)])
    g = timing.versus_nuts(rows).set_index("method").loc["g"]
    assert g["speedup_run"] == pytest.approx(3.0) and math.isnan(g["speedup_run_se"])
    assert not g["timed_apart"]
    assert "one timing" in timing.row_ratio(g, "speedup_run")


def test_a_compile_only_ever_loaded_from_a_cache_is_not_called_cold():
    rows = pd.DataFrame([_row(NUTS, 0, 1.0, 2.0, cold=False), _row("g", 0, 1.0, 0.5, cold=False)])
    assert timing.compile_cost(rows) == (pytest.approx(1.25), False)


# --- the claim ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("mean", "se", "n", "expected"), [
    (2.5, 0.05, 5, "within 2-3x"),
    (2.5, 1.0, 5, "consistent with 2-3x"),
    (1.5, 0.05, 5, "below 2x"),
    (0.5, 0.05, 5, "slower than NUTS"),
    (4.0, 0.1, 5, "above 3x"),
    (2.5, math.nan, 1, "inside 2-3x as a point, undecided without a spread"),
    (5.0, math.nan, 1, "outside 2-3x as a point, undecided without a spread"),
])
def test_a_ratio_is_placed_against_two_to_three_by_its_t_interval(mean, se, n, expected):
    assert claim_check(mean, se, n) == expected


# --- derive and answer on hand-made rows -------------------------------------------------------


def _study_rows(diag_corr: list[float], guide_run: float = 1.0) -> pd.DataFrame:
    rows = []
    for s, corr in enumerate(diag_corr):
        rows.append(_row(NUTS, s, 2.5 + 0.01 * s, 0.0))
        rows.append(_row(FULL_RANK, s, guide_run, 0.0, corr_err_max=0.05 + 0.01 * s))
        rows.append(_row(DIAGONAL, s, guide_run, 0.0, corr_err_max=corr,
                         corr_worst_pair="b_perp ~ theta", verdict_joint="fail", verdict="fail"))
    return pd.DataFrame(rows)


def test_the_diagonal_guide_misses_the_slope_intercept_correlation_beyond_the_noise():
    table = derive(_study_rows([0.40, 0.42, 0.41, 0.43]))
    diag = table.set_index("method").loc[DIAGONAL]
    assert diag["corr_gap"] == pytest.approx(np.mean([0.35, 0.36, 0.34, 0.35]))
    assert diag["corr_gap_n"] == 4 and diag["corr_worst_pair"] == "b_perp ~ theta"
    text = answer(table)
    assert "autodiagonalnormal misses a correlation automvn catches" in text
    assert "worst pair b_perp ~ theta, the document's; joint verdict fail" in text
    assert "; the data agree." in text and "within 2-3x" in text  # 2.5x with no spread to speak of
    assert "beyond t(3) = 3.18 standard errors" in text


def test_a_correlation_gap_within_the_noise_is_not_called_a_miss_and_slow_guides_disagree():
    table = derive(_study_rows([0.9, 0.0, 0.8, 0.0], guide_run=2.0))
    text = answer(table)
    assert "autodiagonalnormal is not shown to differ from automvn" in text
    assert "the data do not agree for automvn, autodiagonalnormal." in text and "below 2x" in text


def test_missing_runs_are_counted_and_no_nuts_means_no_ratio():
    rows = _study_rows([0.4, 0.4])
    rows = pd.concat([rows, pd.DataFrame([{"model": "linreg_outliers", "method": DIAGONAL,
                                           "seed": 2, "status": "missing"}])])
    assert "1 of 7 planned runs are not in the results" in answer(derive(rows))
    assert answer(derive(rows[rows["method"] != NUTS])).startswith("NUTS has no finished run")
    assert answer(derive(rows.iloc[0:0])) == "No runs of this study are in the results."


# --- the plan and the study end to end ---------------------------------------------------------


def test_the_paper_plan_is_the_documents_settings_one_program_per_seed():
    planned = plan_study(STUDIES["faster_than_mcmc"], "paper")
    scope = faster_than_mcmc.SCOPES["paper"]
    assert len(planned) == len(faster_than_mcmc.METHODS) * scope.seeds
    assert all(len(p.cell.seeds) == 1 for p in planned)
    for p in planned:
        s = p.cell.settings
        if p.cell.method == NUTS:
            assert (s.num_warmup, s.num_samples, s.num_chains) == (1000, 20000, 1)
        else:
            assert (s.num_steps, s.num_particles, s.learning_rate) == (10000, 8, 1e-3)


def test_the_smoke_study_times_every_seed_apart_and_answers(smoke_studies):
    proc = smoke_studies.run("faster_than_mcmc")
    out = smoke_studies.out
    table = pd.read_parquet(out / "studies" / "faster_than_mcmc.parquet")
    assert answer(table.drop(columns="profile")) in proc.stdout
    rows = pd.read_parquet(out / "studies" / "faster_than_mcmc.rows.parquet")
    assert (rows["seeds_in_program"] == 1).all() and set(rows["seed"]) == {0, 1}
    diag = table.set_index("method").loc[DIAGONAL]
    assert diag["timed_apart"] and diag["speedup_run_n"] == 2
    assert np.isfinite(diag["speedup_wall"]) and np.isfinite(diag["speedup_wall_se"])
