"""The optimiser is a setting of every SVI run (``--set optimizer=...``): the default program and
the pinned identities stay as they are, a schedule is another run, and the schedules do
what optax says (OneCycle's step sizes, reduce_on_plateau fed the loss through NumPyro's adapter).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pandas as pd
import pytest
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoNormal

from svi_bench.benchmarks.grid import profiles, run_spec
from svi_bench.benchmarks.inference import svi as svi_module
from svi_bench.benchmarks.inference.settings import OPTIMIZERS, SVISettings, identity
from svi_bench.models import REGISTRY
from tests.conftest import run_cli

# Hashes computed when the model's source became part of a run's identity (issue 28; before, with
# the code before optimisers were a setting, commit 02a67a2, they were 52b4ab63356a, 79127c2829ae
# and 06d30ea80445): a change that moves them silently re-runs every stored result.
PINNED = {("coin", "autonormal", "smoke"): "c8da8fcf0c8a",
          ("bnn", "autonormal", "quick"): "edeca1ebf4bc",
          ("coin", "nuts", "smoke"): "016b999707cd"}


def _cell(model: str, method: str, profile: str, **overrides):
    (cell,) = run_spec.plan([REGISTRY[model]], [method], [0], profile, overrides)
    return cell


@pytest.mark.parametrize("key", sorted(PINNED))
def test_default_optimizer_leaves_every_old_hash_unchanged(key):
    assert _cell(*key).hash == PINNED[key]


def test_default_optimizer_leaves_identity_and_repr_as_before():
    s = SVISettings(num_steps=5, num_particles=1, learning_rate=0.1, num_draws=3)
    assert "optimizer" not in identity(s)
    assert repr(s) == ("SVISettings(num_steps=5, num_particles=1, learning_rate=0.1, num_draws=3, "
                       "final_elbo_particles=1000, guide_options={}, precision='float32')")
    scheduled = dataclasses.replace(s, optimizer="onecycle")
    assert identity(scheduled)["optimizer"] == "onecycle"
    assert "optimizer='onecycle'" in repr(scheduled)


def test_a_schedule_is_another_run():
    hashes = {name: _cell("coin", "autonormal", "smoke", optimizer=name).hash for name in OPTIMIZERS}
    assert hashes["adam"] == PINNED[("coin", "autonormal", "smoke")]
    assert len(set(hashes.values())) == len(OPTIMIZERS)


def test_an_unknown_optimizer_is_refused_naming_the_valid_ones():
    s = profiles.settings_for("smoke", "coin", "autonormal")
    with pytest.raises(ValueError, match="adam, onecycle, onecycle_plateau"):
        profiles.with_overrides(s, {"optimizer": "sgd"})
    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--methods", "autonormal",
                   "--set", "optimizer=sgd", "--out", "/nonexistent/never-written")
    assert proc.returncode == 2, proc.stderr
    assert "optimizer" in proc.stderr and "onecycle_plateau" in proc.stderr


def test_default_program_is_numpyros_adam_with_the_same_losses():
    spec = REGISTRY["coin"]
    kwargs = spec.data(spec.default_data_seed).model_kwargs
    s = SVISettings(num_steps=50, num_particles=1, learning_rate=0.01, num_draws=3)

    def losses(svi):
        state = svi.init(jax.random.PRNGKey(3), **kwargs)
        return np.asarray(svi_module.svi_steps(svi, state, kwargs, s.num_steps)[1])

    ours = losses(svi_module.make_svi(spec.model, AutoNormal(spec.model), s))
    import numpyro

    before = losses(SVI(spec.model, AutoNormal(spec.model), numpyro.optim.Adam(0.01),
                        Trace_ELBO(num_particles=1)))
    np.testing.assert_array_equal(ours, before)


def _step_sizes(settings: SVISettings, loss_of_step) -> np.ndarray:
    """The step taken at each step on f(x) = x with a constant gradient 1: Adam's direction is
    then 1 (up to eps), so the parameter's change is minus the effective learning rate."""
    opt = svi_module.make_optimizer(settings)
    state = opt.init({"x": jnp.zeros(())})

    def step(state, t):
        new = opt.update({"x": jnp.ones(())}, state, value=loss_of_step(t))
        delta = opt.get_params(state)["x"] - opt.get_params(new)["x"]
        return new, delta

    _, deltas = jax.lax.scan(step, state, jnp.arange(settings.num_steps))
    return np.asarray(deltas, dtype=np.float64)


def test_onecycle_learning_rate_trace_is_optax_schedule():
    s = SVISettings(num_steps=400, num_particles=1, learning_rate=0.008, num_draws=1,
                    optimizer="onecycle")
    # the document's schedule, written out as 002 writes it
    expected = optax.linear_onecycle_schedule(transition_steps=400, peak_value=0.008,
                                              pct_start=0.2, pct_final=0.8, div_factor=3,
                                              final_div_factor=4)
    expected = jax.vmap(expected)(jnp.arange(400))
    got = _step_sizes(s, lambda t: jnp.zeros(()))
    np.testing.assert_allclose(got, np.asarray(expected), rtol=1e-4)
    assert got.argmax() == 80 and got[0] == pytest.approx(0.008 / 3, rel=1e-4)
    np.testing.assert_allclose(np.asarray(jax.vmap(svi_module.learning_rate_schedule(s))(
                                   jnp.arange(400))),
                               np.asarray(expected), rtol=1e-6)


def test_reduce_on_plateau_reads_the_loss_through_numpyros_adapter():
    s = SVISettings(num_steps=1300, num_particles=1, learning_rate=0.008, num_draws=1,
                    optimizer="onecycle_plateau")
    schedule = np.asarray(jax.vmap(svi_module.learning_rate_schedule(s))(jnp.arange(1300)))
    # a flat loss: the first mean of 100 steps sets the best, 10 more without improvement reduce
    flat = _step_sizes(s, lambda t: jnp.ones(())) / schedule
    np.testing.assert_allclose(flat[:1099], 1.0, rtol=1e-2)  # float32 differences of x
    np.testing.assert_allclose(flat[1099:], 0.1, rtol=1e-2)
    # a loss that keeps improving never reduces the step
    falling = _step_sizes(s, lambda t: 1000.0 - t.astype(jnp.float32)) / schedule
    np.testing.assert_allclose(falling, 1.0, rtol=1e-2)


def test_smoke_run_with_onecycle_gives_ok_rows(tmp_path):
    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--methods",
                   "autonormal,autodiagonalnormal", "--seeds", "2", "--set", "optimizer=onecycle",
                   "--out", str(tmp_path), "--no-progress", env={"SVI_BENCH_TIMING_LOCK": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert len(df) == 4 and set(df.status) == {"ok"}, df[["method", "status", "error"]]
    assert set(df.optimizer) == {"onecycle"}
    assert not set(df.settings_hash) & {PINNED[("coin", "autonormal", "smoke")]}
    assert np.isfinite(df.final_elbo).all()
