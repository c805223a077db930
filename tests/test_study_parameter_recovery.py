"""The ``parameter_recovery`` study (001, the fitted guides' parameters against the truth): the
covariance recipe and the truths on known inputs, the table and answer on hand-made rows whose
answer is known, and the smoke profile end to end with ``--resume``."""

from __future__ import annotations

import json
import math

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro import handlers
from numpyro.distributions import biject_to

from svi_bench.benchmarks.studies import STUDIES, parameter_recovery
from svi_bench.benchmarks.studies.parameter_recovery_answer import (
    ABOVE,
    BELOW,
    NO_TRUTH,
    WITHIN,
    answer,
    covariance_axes,
    derive,
    fold_deg,
    mode_axis_deg,
    truths,
)
from svi_bench.models import correlated_gaussian
from tests.conftest import run_cli

# --- the recipe and the truths ------------------------------------------------------------------


def _scale_tril(sd_minor: float, sd_major: float, theta_deg: float) -> list[list[float]]:
    """The Cholesky factor of the covariance whose sd_minor axis lies along (cos, -sin) theta."""
    t = math.radians(theta_deg)
    minor, major = np.array([math.cos(t), -math.sin(t)]), np.array([math.sin(t), math.cos(t)])
    cov = sd_minor**2 * np.outer(minor, minor) + sd_major**2 * np.outer(major, major)
    return np.linalg.cholesky(cov).tolist()


def test_the_truth_is_the_documents_rotated_gaussian_and_its_covariance_reads_back():
    assert (correlated_gaussian.SIG1, correlated_gaussian.SIG2) == (1.0, 3.0)
    assert math.degrees(correlated_gaussian.THETA) == pytest.approx(45.0)
    axes = covariance_axes(np.linalg.cholesky(correlated_gaussian.covariance()))
    assert axes == pytest.approx({"sd_minor": 1.0, "sd_major": 3.0, "angle_deg": 45.0})
    assert truths()[("correlated_gaussian", "automvn")] == pytest.approx(axes)
    # any angle, either sign of the eigenvector: the axis angle folded into (-90, 90]
    assert covariance_axes(_scale_tril(0.5, 2.0, -30.0)) == pytest.approx(
        {"sd_minor": 0.5, "sd_major": 2.0, "angle_deg": -30.0})
    assert fold_deg(-135.0) == 45.0 and fold_deg(-90.0) == 90.0
    assert math.isnan(covariance_axes([[np.nan, 0], [0, 1]])["sd_minor"])


def test_the_unconstrained_space_of_the_flat_priors_is_x_and_y_themselves():
    """The document's caveat: auto_scale_tril lives in the unconstrained space; under the rotated
    Gaussian's ImproperUniform priors on the real line the transform is the identity."""
    trace = handlers.trace(handlers.substitute(correlated_gaussian.model, data={
        "x": 0.0, "y": 0.0})).get_trace()
    for site in ("x", "y"):
        transform = biject_to(trace[site]["fn"].support)
        values = jnp.asarray([-7.3, 0.0, 2.5])
        assert jnp.array_equal(transform(values), values)
        assert float(transform.log_abs_det_jacobian(values, values).sum()) == 0.0


def test_the_two_mode_densitys_axis_is_found_from_its_log_density():
    from svi_bench.models import multimodal_2d

    assert mode_axis_deg() == pytest.approx(45.0, abs=1e-4)
    truth = truths()[("multimodal_2d", "manual:rotated_mixture")]
    assert truth["b"] == multimodal_2d.B and truth["sig1_q"] == multimodal_2d.SIG1
    assert math.isnan(truth["sig2_q"])


def test_params_json_keeps_each_seeds_parameters():
    params = {"b": np.array([4.9, 5.1]), "auto_scale_tril": np.eye(2)[None].repeat(2, 0)}
    assert json.loads(parameter_recovery.params_json(params, 1)) == {
        "b": 5.1, "auto_scale_tril": [[1.0, 0.0], [0.0, 1.0]]}


# --- the table and the answer ---------------------------------------------------------------------


def _rows(minor: list[float], major: list[float], angle: list[float],
          b: list[float]) -> pd.DataFrame:
    out = []
    for seed, (s1, s2, a) in enumerate(zip(minor, major, angle, strict=True)):
        out.append({"model": "correlated_gaussian", "method": "automvn", "seed": seed,
                    "status": "ok", "error": "", "verdict": "pass", "w1_max": 0.05,
                    "w1_max_floor": 0.04, "num_steps": 4000,
                    "guide_params": json.dumps({"auto_loc": [0.0, 0.0],
                                                "auto_scale_tril": _scale_tril(s1, s2, a)})})
    for seed, value in enumerate(b):
        out.append({"model": "multimodal_2d", "method": "manual:rotated_mixture", "seed": seed,
                    "status": "ok", "error": "", "verdict": "fail", "w1_max": 0.3,
                    "w1_max_floor": 0.04, "num_steps": 4000,
                    "guide_params": json.dumps({"b": value, "sig1_q": 0.55 + 0.001 * seed,
                                                "sig2_q": 4.6, "theta": math.pi / 4})})
    return pd.DataFrame(out)


def test_the_truth_is_within_the_noise_only_within_t_standard_errors():
    """sds and b scattered around their truths are within the noise; an angle 2 degrees low
    and a width 0.052 high, each with a small spread, are beyond it."""
    rows = _rows(minor=[0.98, 1.0, 1.02, 0.99, 1.01], major=[3.05, 2.95, 3.0, 3.02, 2.98],
                 angle=[42.9, 43.0, 43.1, 43.0, 43.0], b=[4.8, 4.9, 5.0, 5.1, 5.2])
    d = derive(rows).set_index("quantity")
    assert d.loc["sd_minor", "mean"] == pytest.approx(1.0)
    assert d.loc["sd_minor", "decision"] == WITHIN and d.loc["sd_major", "decision"] == WITHIN
    assert d.loc["angle_deg", "mean"] == pytest.approx(43.0)
    assert d.loc["angle_deg", "decision"] == BELOW
    assert d.loc["b", "decision"] == WITHIN and d.loc["sig2_q", "decision"] == NO_TRUTH
    assert d.loc["theta_deg", "mean"] == pytest.approx(45.0)
    assert d.loc["sig1_q", "mean"] == pytest.approx(0.552)
    assert d.loc["sig1_q", "decision"] == ABOVE  # 0.052 above, se 0.00071, t(4) x 6 = 4.85
    assert set(d["tests"]) == {6} and d.loc["b", "document"] == 4.99
    text = answer(derive(rows))
    assert text.startswith("The document (001) recovers sds 1.007 and 3.013 at 44.1 degrees "
                           "against the true 1, 3 and 45 from auto_scale_tril")
    assert "the data agree for 4 of 6 quantities" in text
    assert "Bonferroni over the 6 quantities with a truth (beyond t(4) = 4.85" in text
    assert ("angle (deg) 43 ± 0.032 (seed sd 0.071, range 42.9 to 43.1) against the truth 45: "
            "below the truth (the document's one fit: 44.08)") in text
    assert "cross width sig2_q 4.6 ± 0 (seed sd 0, range 4.6 to 4.6), no truth" in text
    assert "mixture weights are fixed at 0.5 each" in text
    STUDIES["parameter_recovery"].figure(rows, derive(rows))  # draws from the same rows


def test_failed_fits_are_counted_and_no_parameters_means_no_decision():
    rows = _rows(minor=[1.0], major=[3.0], angle=[45.0], b=[5.0])
    rows.loc[rows.model == "multimodal_2d", ["status", "error"]] = ["failed", "non-finite draws"]
    d = derive(rows)
    mix = d[d.model == "multimodal_2d"]
    assert set(mix.n_failed) == {1} and set(mix.n_ok) == {0}
    assert set(d[d.model == "correlated_gaussian"].decision) == {"no decision"}  # one seed
    text = answer(d)
    assert "1 failed (non-finite draws)" in text and "the data agree for 0 of 0" in text
    assert answer(pd.DataFrame()) == "No runs of this study are in the results."


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_study_runs_writes_its_table_and_resumes_without_rerunning(smoke_studies):
    out, proc = smoke_studies.out, smoke_studies.run("parameter_recovery")
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "parameter_recovery"]
    scope = parameter_recovery.SCOPES["smoke"]
    assert len(rows) == len(scope.methods) * scope.seeds
    assert set(rows.status) == {"ok"} and rows.study_program.all()
    assert np.isfinite(rows.w1_max).all()
    params = {m: json.loads(p) for m, p in zip(rows.method, rows.guide_params, strict=True)}
    assert np.asarray(params["automvn"]["auto_scale_tril"]).shape == (2, 2)
    assert set(params["manual:rotated_mixture"]) == {"b", "sig1_q", "sig2_q", "theta"}
    table = pd.read_parquet(out / "studies" / "parameter_recovery.parquet")
    assert len(table) == 7 and set(table.n_ok) == {scope.seeds}
    assert STUDIES["parameter_recovery"].answer(table.drop(columns="profile")) in proc.stdout
    before = rows.set_index(["method", "seed", "settings_hash"]).started_at.sort_index()
    proc = run_cli("study", "parameter_recovery", "--profile", "smoke", "--out", str(out),
                   "--resume", "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = pd.read_parquet(out / "results.parquet")
    after = after[after.study == "parameter_recovery"].set_index(
        ["method", "seed", "settings_hash"]).started_at.sort_index()
    pd.testing.assert_series_equal(before, after)
