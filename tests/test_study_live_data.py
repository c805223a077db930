"""The ``live_data`` study (000, live SVI with data arriving): the model's ``n_obs`` (the data seen
so far, traced in one program, absent from the default data key), the table and answer on
hand-made rows whose answer is known, and the smoke profile end to end with ``--resume``."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density

from svi_bench.benchmarks.studies import STUDIES, live_data
from svi_bench.benchmarks.studies.live_data_answer import (
    AHEAD,
    LAGS,
    SAME,
    UNDECIDED,
    answer,
    beyond_noise,
    derive,
)
from svi_bench.models import REGISTRY
from tests.conftest import run_cli

SPEC = REGISTRY["dirichlet_categorical"]

# --- the data seen so far -------------------------------------------------------------------------


def test_n_obs_leaves_the_default_data_key_and_data_as_they_were():
    assert SPEC.data_key() == {"seed": 0, "alpha_scale": 1.0}
    assert SPEC.data_key(n_obs=8) == SPEC.data_key()  # all of them: the existing data
    assert SPEC.make_data().model_kwargs == {"alpha_scale": 1.0}
    assert SPEC.data_key(n_obs=3) == {"seed": 0, "alpha_scale": 1.0, "n_obs": 3}
    assert SPEC.data_for(SPEC.data_key(n_obs=3)).model_kwargs == {"alpha_scale": 1.0, "n_obs": 3}
    with pytest.raises(ValueError, match="size parameter n_obs must be an integer >= 0 and <= 8"):
        SPEC.data_key(n_obs=9)


@pytest.mark.parametrize("n_obs", [0, 3, 6])
def test_the_posterior_of_the_first_n_observations_is_exact(n_obs):
    ds = SPEC.make_data(n_obs=n_obs)
    counts = np.bincount([2, 2, 2, 2, 2, 5, 5, 5][:n_obs], minlength=12)
    mean, _ = SPEC.exact_moments(ds)["theta"]
    assert np.allclose(mean, (1 + counts) / (12 + n_obs))
    # the masked model's log joint is the Dirichlet-categorical one of the first n_obs, and a
    # traced n_obs gives the same value: one program serves every batch
    theta = jnp.asarray(np.random.default_rng(0).dirichlet(np.ones(12)))
    traced = jax.jit(lambda n: log_density(SPEC.model, (), {"n_obs": n}, {"theta": theta})[0])
    direct = log_density(SPEC.model, (), dict(ds.model_kwargs), {"theta": theta})[0]
    expected = (float(jax.scipy.stats.dirichlet.logpdf(theta, jnp.ones(12)))
                + float(np.sum(counts * np.log(np.asarray(theta)))))
    assert float(direct) == pytest.approx(expected, rel=1e-5)
    assert float(traced(jnp.float32(n_obs))) == pytest.approx(expected, rel=1e-5)


def test_cli_size_accepts_the_optional_n_obs_and_names_it_when_wrong(tmp_path):
    proc = run_cli("reference", "--model", "dirichlet_categorical", "--size",
                   "dirichlet_categorical.nope=1", "--out", str(tmp_path))
    assert proc.returncode == 2 and "valid: dirichlet_categorical.alpha_scale, " \
        "dirichlet_categorical.n_obs" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr


# --- the table and the answer -----------------------------------------------------------------------


def _rows(w1: dict[tuple[str, str], list[list[float]]], verdicts=None) -> pd.DataFrame:
    """Ok rows: per (method, variant) a list per seed of W1 per batch (n_obs 2, 4, ...); the
    verdict is pass when W1 < 0.2 unless given."""
    out = []
    for (method, variant), per_seed in w1.items():
        for seed, values in enumerate(per_seed):
            for batch, w in enumerate(values):
                out.append({"model": "dirichlet_categorical", "method": method,
                            "variant": variant, "seed": seed, "batch": batch,
                            "n_obs": 2 * (batch + 1), "status": "ok", "error": "",
                            "w1_max": w, "w1_max_floor": 0.1,
                            "verdict": "pass" if w < 0.2 else "warn",
                            "grad_evals": {"live": 100.0, "restart": 1000.0,
                                           "nuts": 5000.0}[variant],
                            "run_s": {"live": 0.01, "restart": 0.1, "nuts": 0.5}[variant],
                            "compile_s": 3.0})
    return pd.DataFrame(out)


def test_the_decision_on_live_svi_s_lag_needs_the_difference_beyond_twice_its_noise():
    assert beyond_noise(0.3, 0.1) == LAGS and beyond_noise(-0.3, 0.1) == AHEAD
    assert beyond_noise(0.15, 0.1) == SAME and beyond_noise(0.3, float("nan")) == UNDECIDED


def test_the_table_counts_passing_seeds_costs_and_where_live_lags():
    rows = _rows({
        ("autonormal", "live"): [[0.1, 0.5, 0.1], [0.12, 0.55, 0.11], [0.11, 0.52, 0.09]],
        ("autonormal", "restart"): [[0.1, 0.1, 0.1], [0.12, 0.11, 0.1], [0.1, 0.12, 0.11]],
        ("nuts", "nuts"): [[0.05, 0.05, 0.05]] * 3,
    })
    d = derive(rows)
    live = d[d.arm == "live autonormal"].set_index("n_obs")
    assert live.loc[4, "lag"] == LAGS and live.loc[2, "lag"] == SAME
    assert live.loc[4, "lag_fails"] == 3 and live.loc[4, "n_pass"] == 0
    assert live.loc[4, "lag_w1"] == pytest.approx(np.mean([0.4, 0.44, 0.40]))
    assert live.loc[2, "n_pass"] == 3 and live.loc[2, "pass_lo"] == pytest.approx(
        0.4385, abs=1e-3)
    assert (live.seeds_all_pass == 0).all() and (live.stream_grad_evals == 300).all()
    nuts = d[d.arm == "nuts"]
    assert (nuts.seeds_all_pass == 3).all() and (nuts.stream_grad_evals == 15000).all()
    assert nuts.lag.eq("").all()
    text = answer(d)
    assert text.startswith('The document (000): "The ability to update the data going into a '
                           'model')
    assert "no live SVI run stays within the noise after every batch, so the data do not" in text
    assert ("Within the noise of the exact posterior after every batch, the cheapest arm is "
            "restart autonormal by gradient evaluations and restart autonormal by run time."
            ) in text
    assert ("live autonormal: within the noise after every batch for 0 of 3 seeds (6 of 9 fits "
            "pass") in text
    assert "not every seed passes after 4 observations" in text
    assert ("restart autonormal: within the noise after every batch for 3 of 3 seeds") in text
    assert ("autonormal: live SVI's W1 exceeds the restart's beyond twice the seed noise at "
            "4 observations seen") in text
    assert "live fails the verdict where the restart passes after 4 observations" in text


def test_the_cheapest_arm_among_those_always_within_the_noise_and_one_seed_undecided():
    rows = _rows({("autonormal", "live"): [[0.1, 0.1]], ("autonormal", "restart"): [[0.1, 0.1]],
                  ("nuts", "nuts"): [[0.3, 0.05]]})
    d = derive(rows)
    text = answer(d)
    assert "live SVI (autonormal) stays within the noise after every batch, so the data agree" \
        in text
    assert ("Within the noise of the exact posterior after every batch, the cheapest arm is "
            "live autonormal by gradient evaluations and live autonormal by run time.") in text
    assert "one seed (or no paired seeds), so no seed noise" in text
    assert answer(pd.DataFrame()) == "No runs of this study are in the results."
    failed = rows.copy()
    failed.loc[failed.variant == "live", ["status", "error"]] = ["failed", "non-finite draws"]
    d = derive(failed)
    assert (d[d.arm == "live autonormal"].n_failed == 1).all()
    assert "2 failed runs" in answer(d)


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_study_runs_writes_its_table_and_resumes_without_rerunning(smoke_studies):
    out, proc = smoke_studies.out, smoke_studies.run("live_data")
    sched, scope = live_data.SCHEDULES["smoke"], live_data.SCOPES["smoke"]
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "live_data"]
    guides = [m for m in scope.methods if m != "nuts"]
    assert len(rows) == scope.seeds * len(sched.arrivals) * (2 * len(guides) + 1)
    assert set(rows.status) == {"ok"} and rows.study_program.all()
    assert sorted({json.loads(d).get("n_obs", 8) for d in rows.data}) == list(sched.arrivals)
    assert np.isfinite(rows.w1_max).all() and np.isfinite(rows.w1_max_floor).all()
    nuts = rows[rows.variant == "nuts"]
    assert (nuts.artifact != "").all() and (nuts.grad_evals > 0).all()  # grid cells: artifacts
    live = rows[rows.variant == "live"].sort_values("n_obs")
    assert (live.artifact == "").all() and (live.num_steps % 100 == 0).all()
    assert live.compile_s.nunique() == 1  # one executable served every batch
    table = pd.read_parquet(out / "studies" / "live_data.parquet")
    assert set(table.arm) == {"live autonormal", "restart autonormal", "nuts"}
    assert STUDIES["live_data"].answer(table.drop(columns="profile")) in proc.stdout
    before = rows.set_index(["method", "seed", "settings_hash", "data"]).started_at.sort_index()
    proc = run_cli("study", "live_data", "--profile", "smoke", "--out", str(out), "--resume",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = pd.read_parquet(out / "results.parquet")
    after = after[after.study == "live_data"].set_index(
        ["method", "seed", "settings_hash", "data"]).started_at.sort_index()
    pd.testing.assert_series_equal(before, after)
