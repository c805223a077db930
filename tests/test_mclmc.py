"""MCLMC and MAMS (``benchmarks.methods.mclmc``): gradient counts per integrator stage, tuning
included, derived by hand and checked against every evaluation BlackJAX makes on a standard
Gaussian; the method contract; settings refused with a clear message; d = 1 not applicable."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.methods import mclmc as mc
from svi_bench.benchmarks.methods.contract import check_method
from svi_bench.models import REGISTRY


def _counting_standard_gaussian(calls: list):
    def logdensity(x):
        jax.debug.callback(lambda _: calls.append(1), jax.lax.stop_gradient(x[0]))
        return -0.5 * jnp.sum(x ** 2)
    return logdensity


def test_tuning_steps_follow_blackjax_rounding_by_hand():
    # 0.3 * 57 = 17.1 -> 17 per stage, the preconditioner round(17 / 3) = 6 more
    assert mc.mclmc_tuning_steps(57) == 17 + 17 + 6 + 17
    assert mc.mclmc_tuning_steps(500) == 150 + 150 + 50 + 150
    assert mc.integrator_stages("mclachlan") == 2 and mc.integrator_stages("velocity_verlet") == 1
    s = mc.MCLMCSettings(num_warmup=57, num_samples=7, num_chains=1, thinning=3)
    assert mc.mclmc_grad_evals(s) == 1 + 2 * (57 + 7 * 3)


@pytest.mark.slow
@pytest.mark.parametrize("integrator", ["mclachlan", "velocity_verlet"])
def test_mclmc_counts_every_gradient_blackjax_evaluates(integrator):
    calls: list = []
    s = mc.MCLMCSettings(num_warmup=57, num_samples=7, num_chains=1, thinning=3,
                         integrator=integrator)
    out = jax.jit(lambda k: mc.mclmc_chain(k, _counting_standard_gaussian(calls), jnp.ones(3),
                                           s))(jax.random.PRNGKey(0))
    jax.block_until_ready(out)
    assert out[0].shape == (7, 3)
    assert len(calls) == mc.mclmc_grad_evals(s) == 1 + mc.integrator_stages(integrator) * (57 + 7 * 3)


@pytest.mark.slow
def test_mams_counts_every_gradient_blackjax_evaluates():
    """Per integrator step two gradients (McLachlan), tuning's steps as BlackJAX returns them,
    sampling's as each transition reports them, and one at the initial point."""
    calls: list = []
    s = mc.MAMSSettings(num_warmup=40, num_samples=7, num_chains=1, thinning=3)
    positions, diverging, steps, accept, tuning, step_size, length = jax.jit(
        lambda k: mc.mams_chain(k, _counting_standard_gaussian(calls), jnp.ones(3), s))(
        jax.random.PRNGKey(0))
    jax.block_until_ready(positions)
    assert positions.shape == (7, 3) and diverging.shape == steps.shape == (7,)
    assert np.all(np.asarray(steps) >= 3)  # thinning 3: at least a step per transition
    assert len(calls) == 1 + 2 * (int(tuning) + int(np.sum(steps)))
    # three tuning passes of 13 transitions (int(40 / 3)), at least one step each
    assert int(tuning) >= 3 * 13
    assert float(length) == pytest.approx(s.target_num_integration_steps * float(step_size))


@pytest.mark.slow
def test_mclmc_passes_the_method_contract():
    """The contract at the smoke settings (quick compiles the same program and runs longer); its
    one-dimensional posterior is not applicable, with the reason."""
    method = dataclasses.replace(mc.MCLMC, defaults={**mc.DEFAULTS, "quick": mc.DEFAULTS["smoke"]})
    checks = check_method(method)
    failed = [c for c in checks if not c.ok]
    assert not failed, failed
    assert any("not applicable: MCLMC and MAMS need a latent dimension of at least 2" in c.message
               for c in checks)


def test_one_dimension_is_not_applicable_and_two_are():
    coin = REGISTRY["coin"]
    for method in mc.METHODS:
        assert "at least 2" in method.applicable(coin, LatentInfo(("p",), {"p": ()}, 1))
        assert method.applicable(coin, LatentInfo(("p",), {"p": (2,)}, 2)) is None
        assert method.family == "mcmc" and method.order >= 300 and not method.problems()
        for profile in ("smoke", "quick", "paper"):
            method.settings(profile, "coin")


@pytest.mark.parametrize(("cls", "changes", "message"), [
    (mc.MCLMCSettings, dict(num_chains=0), "num_chains must be an integer >= 1, got 0"),
    (mc.MCLMCSettings, dict(num_warmup=5), "num_warmup must be an integer >= 10, got 5"),
    (mc.MCLMCSettings, dict(thinning=1.5), "thinning must be an integer >= 1, got 1.5"),
    (mc.MCLMCSettings, dict(integrator="leapfrog"), "integrator must be one of mclachlan, "),
    (mc.MCLMCSettings, dict(desired_energy_var=0.0), "desired_energy_var must be a finite "
                                                     "number > 0.0, got 0.0"),
    (mc.MCLMCSettings, dict(precision="float16"), "precision must be one of float32, float64"),
    (mc.MAMSSettings, dict(target_accept=1.0), r"target_accept must be a finite number > 0.0 "
                                               r"and < 1.0, got 1.0"),
    (mc.MAMSSettings, dict(target_num_integration_steps=1.0),
     "target_num_integration_steps must be a finite number >= 1.1, got 1.0"),
])
def test_bad_settings_are_refused_with_what_is_wrong(cls, changes, message):
    good = cls(num_warmup=100, num_samples=10, num_chains=2)
    good.validate()
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(good, **changes).validate()
