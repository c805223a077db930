"""The ``support_mismatch`` study (001, a Normal guide on a [0, 1] parameter): the mismatched
linear-regression guide, what counts as a failure, the table and answer on hand-made rows whose
answer is known, and the smoke profile end to end with ``--resume``."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from numpyro import handlers

from svi_bench.benchmarks.studies import STUDIES, stats, support_mismatch
from svi_bench.benchmarks.studies.support_mismatch_answer import (
    AS_WELL,
    MORE,
    MORE_NAN,
    SAME,
    SAME_NAN,
    WORSE,
    answer,
    derive,
    failed_seeds,
    outside_mass,
    q_density,
)
from svi_bench.models import linreg_outliers
from tests.conftest import run_cli

# --- the guides ---------------------------------------------------------------------------------


def _trace(guide):
    spec = support_mismatch.model_spec("linreg_outliers")
    return handlers.trace(handlers.seed(guide, 0)).get_trace(
        **spec.data_for(spec.data_key()).model_kwargs)


def test_the_mismatched_regression_guide_is_the_documents_with_a_normal_on_q():
    mine, theirs = _trace(support_mismatch.guide_normal_q), _trace(
        linreg_outliers.guide_independent)
    samples = [k for k, v in theirs.items() if v["type"] == "sample"]
    assert [k for k, v in mine.items() if v["type"] == "sample"] == samples
    assert type(mine["Q"]["fn"]).__name__ == "Normal" and type(theirs["Q"]["fn"]).__name__ == "Beta"
    assert {"Q_mu", "Q_sig"} <= set(mine) and not {"Q_A", "Q_B"} & set(mine)
    for site in samples:  # every other site is the document's guide's
        if site != "Q":
            assert type(mine[site]["fn"]) is type(theirs[site]["fn"]), site
    assert support_mismatch.ROLES["linreg_outliers"]["manual:normal_q"] == "mismatched"
    assert "normal_q" not in linreg_outliers.SPEC.guides  # the grid keeps the document's guide


def test_intervals_apart_is_the_wilson_overlap_rule():
    assert stats.intervals_apart((0.6, 0.9), (0.0, 0.3)) == 1
    assert stats.intervals_apart((0.0, 0.3), (0.6, 0.9)) == -1
    assert stats.intervals_apart((0.2, 0.7), (0.0, 0.3)) == 0
    assert stats.intervals_apart((np.nan, 0.7), (0.0, 0.3)) is None


def test_the_fitted_densities_and_the_normals_mass_outside_the_support():
    x = np.array([-0.1, 0.25, 0.5, 0.75, 1.1])
    normal = q_density({"mean": 0.5, "var": 0.25}, "latent_fairness", x)
    assert normal == pytest.approx(np.exp(-0.5 * ((x - 0.5) / 0.25) ** 2) / (0.25 * np.sqrt(
        2 * np.pi)))
    beta = q_density({"Q_A": 2.0, "Q_B": 2.0}, "Q", x)
    assert beta == pytest.approx([0.0, 6 * 0.25 * 0.75, 1.5, 6 * 0.75 * 0.25, 0.0])
    logit = q_density({"Q_auto_loc": 0.0, "Q_auto_scale": 1.0}, "Q", x)
    assert logit[[0, 4]].tolist() == [0.0, 0.0]  # none outside the support
    assert logit[2] == pytest.approx(4 / np.sqrt(2 * np.pi))  # N(0; 0, 1) / (0.5 * 0.5)
    assert q_density({"b": 1.0}, "Q", x) is None
    assert outside_mass({"mean": 0.5, "var": 0.25}) == pytest.approx(2 * 0.0227501, rel=1e-4)
    assert np.isnan(outside_mass({"alpha_q": 13.0, "beta_q": 9.0}))


# --- the table and the answer ---------------------------------------------------------------------


def _rows(cells: dict[tuple[str, str, str], list[tuple[str, int, str, float]]]) -> pd.DataFrame:
    """Rows per (model, guide, role): one (status, non-finite losses, verdict, W1) per seed."""
    out = []
    for (model, method, role), seeds in cells.items():
        for seed, (status, nans, verdict, w1) in enumerate(seeds):
            out.append({"model": model, "method": method, "variant": role, "seed": seed,
                        "status": status, "error": "non-finite draws" if status == "failed"
                        else "", "nan_count": nans, "verdict": verdict if status == "ok" else "",
                        "w1_max": w1 if status == "ok" else np.nan, "w1_max_floor": 0.05,
                        "num_steps": 4000})
    return pd.DataFrame(out)


def test_a_failure_is_a_failed_fit_a_non_finite_loss_or_a_fail_verdict():
    rows = _rows({("coin", "manual:normal", "mismatched"): [
        ("ok", 0, "pass", 0.1), ("ok", 3, "pass", 0.1), ("failed", 0, "", 0.0),
        ("ok", 0, "fail", 0.9), ("missing", 0, "", 0.0)]})
    assert failed_seeds(rows).tolist() == [False, True, True, True, False]


def test_the_mismatched_guide_fails_more_often_only_beyond_the_binomial_noise():
    failed = ("failed", 40, "", 0.0)
    ran = [("ok", 5, "pass", 0.3), ("ok", 5, "pass", 0.31), ("ok", 5, "pass", 0.29),
           ("ok", 5, "pass", 0.3)]
    rows = _rows({
        ("coin", "manual:normal", "mismatched"): [("ok", 0, "pass", 0.1 + 0.001 * i)
                                                  for i in range(10)],
        ("coin", "manual:beta", "matched"): [("ok", 0, "pass", 0.1 + 0.001 * (9 - i))
                                             for i in range(10)],  # the same W1s
        ("linreg_outliers", "manual:normal_q", "mismatched"): [failed] * 6 + ran,
        ("linreg_outliers", "manual:independent", "matched"): [("ok", 0, "pass", 0.08 + 0.001 * i)
                                                               for i in range(10)],
    })
    d = derive(rows).set_index("method")
    assert d.loc["manual:normal_q", "n_bad"] == 10 and d.loc["manual:normal_q", "n_failed"] == 6
    assert d.loc["manual:normal_q", "n_nonfinite"] == 10 and d.loc["manual:normal_q", "n_ok"] == 4
    assert d.loc["manual:independent", "rate_finding"] == MORE
    assert d.loc["manual:independent", "w1_finding"] == WORSE  # 0.3 ± 0.0041 against 0.0845
    assert d.loc["manual:beta", "rate_finding"] == SAME
    assert d.loc["manual:beta", "w1_finding"] == AS_WELL
    assert d.loc["manual:independent", "nan_finding"] == MORE_NAN
    assert d.loc["manual:beta", "nan_finding"] == SAME_NAN
    assert set(d.tests) == {4}  # two decisions per pair
    text = answer(derive(rows))
    assert text.startswith('The document (001): a guide whose support does not match "mixing '
                           "and matching dissimilar distributions")
    assert ('coin: the document says "We can get away with this discrepency in this well '
            'behaved case"; the data agree (manual:normal against manual:beta it fails about as '
            "often (within the noise), has as many non-finite losses (within the noise) and agrees as "
            "well (within the noise))") in text
    assert "linreg_outliers: the document says" in text
    assert ("the data agree (manual:normal_q against manual:independent it fails more often, has "
            "more non-finite losses and agrees worse)") in text
    assert ("manual:normal_q (mismatched) fails 10 of 10 seeds (95% Wilson 0.72-1: 6 failed "
            "fits, 10 with non-finite losses, 0 fail verdicts; median 40 non-finite losses per seed "
            "in 4000 steps); W1 of the 4 that ran") in text
    assert "first failure: non-finite draws" in text
    assert "(beyond t(3) = 5.39 standard errors at 95% Bonferroni-corrected over 4" in text
    STUDIES["support_mismatch"].figure(rows, derive(rows))  # draws from the same rows


def test_a_harmless_mismatch_where_the_document_expects_harm_is_disagreement():
    fine = [("ok", 0, "pass", 0.1 + 0.001 * i) for i in range(5)]
    rows = _rows({("linreg_outliers", "manual:normal_q", "mismatched"): fine,
                  ("linreg_outliers", "manual:independent", "matched"): fine})
    assert "; the data do not agree (manual:normal_q" in answer(derive(rows))
    assert answer(pd.DataFrame()) == "No runs of this study are in the results."


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_study_runs_writes_its_table_and_resumes_without_rerunning(smoke_studies):
    out, proc = smoke_studies.out, smoke_studies.run("support_mismatch")
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "support_mismatch"]
    scope = support_mismatch.SCOPES["smoke"]
    assert len(rows) == len(scope.methods) * scope.seeds
    assert set(rows.status) == {"ok"} and rows.study_program.all()
    assert dict(zip(rows.method, rows.variant, strict=True)) == {
        "manual:normal": "mismatched", "manual:beta": "matched"}
    assert np.isfinite(rows.w1_max).all()
    params = {m: set(json.loads(p)) for m, p in zip(rows.method, rows.guide_params, strict=True)}
    assert params == {"manual:normal": {"mean", "var"}, "manual:beta": {"alpha_q", "beta_q"}}
    table = pd.read_parquet(out / "studies" / "support_mismatch.parquet")
    assert sorted(table.method) == ["manual:beta", "manual:normal"]
    assert STUDIES["support_mismatch"].answer(table.drop(columns="profile")) in proc.stdout
    before = rows.set_index(["method", "seed", "settings_hash"]).started_at.sort_index()
    proc = run_cli("study", "support_mismatch", "--profile", "smoke", "--out", str(out),
                   "--resume", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = pd.read_parquet(out / "results.parquet")
    after = after[after.study == "support_mismatch"].set_index(
        ["method", "seed", "settings_hash"]).started_at.sort_index()
    pd.testing.assert_series_equal(before, after)
