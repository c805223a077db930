"""The grid runner: failures become rows, the grid goes on, results survive and resume."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd
import pytest

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.execution import run_grid
from svi_bench.benchmarks.grid.run_spec import plan
from svi_bench.benchmarks.inference import host_load, jax_setup
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.models import Dataset, ModelSpec

jax_setup.configure_jax()


def _model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _nan_guide(y):
    """NaN loss from the first step (log of a negative number), distributions kept valid."""
    loc = numpyro.param("loc", 0.0)
    numpyro.sample("mu", dist.Normal(loc, 1.0))
    numpyro.factor("boom", jnp.log(-jnp.abs(loc) - 1.0))


def _data(seed: int) -> Dataset:
    y = np.random.default_rng(seed).normal(1.0, 1.0, size=10).astype(np.float32)
    return Dataset(model_kwargs={"y": jnp.asarray(y)})


def _broken_model(y):
    raise RuntimeError("user model is broken")


TOY = ModelSpec(name="toy", description="normal mean", source="tests", model=_model,
                data=_data, guides={"nan": _nan_guide}, reference_kind="exact")
BROKEN = ModelSpec(name="broken", description="raises", source="tests", model=_broken_model,
                   data=_data, guides={}, reference_kind="exact")
TINY = {"num_steps": 50, "num_draws": 100, "final_elbo_particles": 20,
        "num_warmup": 20, "num_samples": 20, "num_chains": 2}


def _run(tmp_path, specs, methods, resume=False):
    results = store.ResultsStore(tmp_path)
    cells = list(plan(specs, methods, [0, 1], "smoke", TINY))
    run_grid(cells, results, resume=resume, score=False)
    return pd.read_parquet(tmp_path / "results.parquet")


def test_a_guide_forced_to_nan_fails_and_the_grid_goes_on(tmp_path):
    df = _run(tmp_path, [TOY], ["manual:nan", "autonormal", "nuts"])
    nan_rows = df[df.method == "manual:nan"]
    assert (nan_rows.status == "failed").all()
    assert nan_rows.error.str.contains("non-finite").all()
    assert (nan_rows.nan_count == 50).all() and (nan_rows.first_nan_step == 0).all()
    assert (df[df.method != "manual:nan"].status == "ok").all()
    # the failed run's loss trace is kept for the report
    artifact = df[(df.method == "manual:nan") & (df.seed == 0)].artifact.iloc[0]
    _, other, _ = arviz_adapter.load_run(tmp_path / artifact)
    assert np.isnan(other["losses"]).all()


EDGE = 3.0


def _edge_model(y):
    """The toy model with a hard edge: no mass beyond |mu| = 3 (log density -inf there)."""
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.factor("edge", jnp.where(jnp.abs(mu) < EDGE, 0.0, -jnp.inf))
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _edge_guide(y):
    """Starts on the edge: its first particles fall beyond it (an infinite loss), as documents'
    guides drawing outside a prior's support do; the fit then moves inside and stays finite."""
    loc = numpyro.param("loc", EDGE + 0.2)
    numpyro.sample("mu", dist.Normal(loc, 0.2))


EDGY = ModelSpec(name="edgy", description="normal mean with a hard edge", source="tests",
                 model=_edge_model, data=_data, guides={"edge": _edge_guide},
                 reference_kind="exact")


def test_a_few_non_finite_losses_warn_and_the_row_stays_ok(tmp_path):
    """Infinite losses early on, none in the last 10% of steps, finite parameters and draws: the
    row is ok and its warning says how many losses were non-finite and where the first was."""
    results = store.ResultsStore(tmp_path)
    settings = {**TINY, "num_steps": 200, "learning_rate": 0.05}
    run_grid(list(plan([EDGY], ["manual:edge"], [0, 1], "smoke", settings)), results,
             score=False)
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert len(df) == 2
    for row in df.itertuples():
        assert row.status == "ok", row.error
        assert row.error == ""
        assert 0 < row.nan_count < 20 and 0 <= row.first_nan_step < 10, (row.nan_count,
                                                                         row.first_nan_step)
        assert (f"{row.nan_count} of 200 losses non-finite, first at step "
                f"{int(row.first_nan_step)}") in row.warning, row.warning
        assert np.isfinite(row.final_loss_mean) and np.isfinite(row.final_elbo)
        _, other, _ = arviz_adapter.load_run(tmp_path / row.artifact)
        losses = other["losses"]
        assert int((~np.isfinite(losses)).sum()) == row.nan_count
        assert np.all(np.isfinite(losses[-20:]))


def test_a_broken_user_model_is_a_failed_row_not_a_crash(tmp_path):
    df = _run(tmp_path, [BROKEN, TOY], ["autonormal"])
    broken = df[df.model == "broken"]
    assert (broken.status == "failed").all()
    assert broken.error.str.contains("user model is broken").all()
    assert (df[df.model == "toy"].status == "ok").all()


def _no_valid_point_model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.factor("never", -jnp.inf)
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


NO_INIT = ModelSpec(name="no_init", description="no valid initial point", source="tests",
                    model=_no_valid_point_model, data=_data, guides={}, reference_kind="exact")


def test_a_model_without_a_valid_initial_point_is_a_failed_row(tmp_path):
    """The runner reads a model's latent shapes abstractly, yet still checks its initial point:
    NUTS (which would otherwise sit at an invalid point and report divergences) and SVI fail
    with NumPyro's reason before anything is compiled."""
    df = _run(tmp_path, [NO_INIT], ["autonormal", "nuts"])
    assert (df.status == "failed").all()
    assert df.error.str.contains("model or data failed: RuntimeError: Cannot find valid "
                                 "initial parameters").all(), list(df.error)


def test_resume_skips_done_runs_and_keeps_earlier_results(tmp_path):
    first = _run(tmp_path, [TOY], ["autonormal"])
    second = _run(tmp_path, [TOY], ["autonormal", "nuts"], resume=True)
    kept = second[second.method == "autonormal"].sort_values("seed")
    assert list(kept.started_at) == list(first.sort_values("seed").started_at)
    assert set(second.method) == {"autonormal", "nuts"}
    assert not list(tmp_path.glob(".*.tmp"))


def test_unknown_size_parameter_is_refused():
    with pytest.raises(ValueError, match="no size parameter"):
        TOY.make_data(0, n=3)


def test_worker_processes_give_the_same_rows(tmp_path):
    serial = _run(tmp_path / "serial", [TOY, BROKEN], ["autonormal", "manual:nan"])
    results = store.ResultsStore(tmp_path / "jobs")
    run_grid(list(plan([TOY, BROKEN], ["autonormal", "manual:nan"], [0, 1], "smoke", TINY)),
             results, score=False, jobs=2)
    parallel = pd.read_parquet(tmp_path / "jobs" / "results.parquet")
    key = ["model", "method", "seed"]
    a, b = serial.sort_values(key).reset_index(), parallel.sort_values(key).reset_index()
    assert list(a.status) == list(b.status)
    assert np.allclose(a.final_loss_mean, b.final_loss_mean, equal_nan=True)
    assert (b.jobs == 2).all()


def test_rows_say_how_busy_the_host_was_during_their_timed_run(tmp_path):
    """Every row carries ``host_others_share`` and ``contended``; a run too short to measure
    (these tiny programs take milliseconds) says NaN and unknown rather than a guess."""
    df = _run(tmp_path, [TOY], ["autonormal", "nuts"])
    assert {"host_others_share", "contended"} <= set(df.columns)
    share = df["host_others_share"]
    known = share.notna()
    assert ((share[known] >= 0) & (share[known] <= 1)).all()
    assert df.loc[~known, "contended"].isna().all()
    judged = df["contended"].notna()
    assert (df.loc[judged, "contended"] == (share[judged] > host_load.CONTENDED_SHARE)).all()
    for row in df[known].itertuples():  # judged exactly when the run is long enough to resolve
        resolved = host_load.resolution(row.program_run_s) <= host_load.CONTENDED_SHARE / 2
        assert pd.notna(row.contended) == resolved, row
