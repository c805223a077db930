"""flow:rqs (``benchmarks.methods.flows``): it keeps the method contract, counts one gradient per
ELBO particle and step, refuses bad settings with a clear message and a one-dimensional latent
space with a reason.

Fast on purpose (one small compile): the contract runs with reduced settings (``REDUCED``: 300
steps of a two-layer flow) in place of the quick profile's (1000 x 32 steps, eight layers), which
``svi-bench check --method svi_bench.benchmarks.methods.flows`` runs in full.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.methods import RunResult, flows
from svi_bench.benchmarks.methods.base import PROFILES
from svi_bench.benchmarks.methods.contract import SEEDS, check_method, known_posteriors

REDUCED = dict(num_steps=300, batch_size=16, learning_rate=5e-3, flow_layers=2, knots=4,
               interval=5.0, nn_width=16, num_draws=1000, final_elbo_particles=500)
"""The contract's quick settings in this test: enough to fit its 2-D Gaussian, cheap to compile."""


@pytest.fixture(scope="module")
def contract_run() -> tuple[list, list[RunResult]]:
    """The whole contract (``check_method``) on flow:rqs with ``REDUCED`` quick settings, and the
    RunResult its program returned."""
    results: list[RunResult] = []

    def build(*args, **kwargs):
        program = flows.build(*args, **kwargs)

        def keep(rng_keys):
            results.append(program(rng_keys))
            return results[-1]

        return keep

    method = dataclasses.replace(flows.FLOW_RQS, build=build,
                                 defaults={**flows.DEFAULTS, "quick": REDUCED})
    return check_method(method), results


def test_the_contract_passes_with_reduced_settings(contract_run):
    checks, results = contract_run
    failed = [str(c) for c in checks if not c.ok]
    assert not failed, failed
    names = [c.name for c in checks]
    # the 1-D Gamma-Poisson rate is not applicable; the 2-D Gaussian ran and agreed
    assert "contract_gamma_poisson: applicable" in names
    assert "contract_gaussian_2d: agreement" in names
    assert len(results) == 1


def test_gradient_count_is_steps_times_batch(contract_run):
    _, [result] = contract_run
    steps, batch = REDUCED["num_steps"], REDUCED["batch_size"]
    settings = flows.FlowSettings(**REDUCED)
    assert flows.grad_evals(settings) == steps * batch
    np.testing.assert_array_equal(result.grad_evals, [steps * batch] * len(SEEDS))
    assert result.losses.shape == (len(SEEDS), steps)
    assert result.log_weights.shape == (len(SEEDS), REDUCED["final_elbo_particles"])
    assert result.draws["z"].shape == (len(SEEDS), 1, REDUCED["num_draws"], 2)  # one chain
    assert result.params_finite.tolist() == [True] * len(SEEDS)
    assert dict(result.columns) == {"num_draws": 1000, "num_steps": steps, "num_particles": batch}
    assert np.all(np.isfinite(result.log_weights))


def test_every_profile_builds_valid_settings_and_quick_is_a_fair_share_of_nuts():
    for profile in PROFILES:
        flows.FLOW_RQS.settings(profile, "correlated_gaussian")
    quick = flows.FLOW_RQS.settings("quick", "correlated_gaussian")
    assert 1e4 <= flows.grad_evals(quick) <= 1e5  # NUTS quick: 10^4-10^5 gradients per seed
    smoke = flows.FLOW_RQS.settings("smoke", "correlated_gaussian")
    assert flows.grad_evals(smoke) < flows.grad_evals(quick) and smoke.flow_layers <= 2


@pytest.mark.parametrize("field, value, message", [
    ("num_steps", 0, "num_steps must be a positive integer, got 0"),
    ("batch_size", True, "batch_size must be a positive integer, got True"),
    ("knots", 2.5, "knots must be a positive integer, got 2.5"),
    ("learning_rate", 0.0, "learning_rate must be a finite number > 0, got 0.0"),
    ("learning_rate", math.nan, "learning_rate must be a finite number > 0, got nan"),
    ("interval", -1.0, "interval must be a finite number > 0, got -1.0"),
    ("precision", "float16", "precision must be one of float32, float64, got 'float16'"),
])
def test_bad_settings_are_refused_naming_the_value(field, value, message):
    settings = flows.FlowSettings(**{**REDUCED, field: value})
    with pytest.raises(ValueError) as info:
        settings.validate()
    assert str(info.value) == message


def test_one_latent_dimension_is_not_applicable_naming_an_alternative():
    rate, _ = known_posteriors()[0]
    reason = flows.FLOW_RQS.applicable(rate, LatentInfo(("rate",), {"rate": ()}, 1))
    assert isinstance(reason, str)
    assert "at least 2" in reason and "has 1" in reason and "autodiagonalnormal" in reason
    assert flows.FLOW_RQS.applicable(rate, LatentInfo(("z",), {"z": (2,)}, 2)) is None


def test_the_untrained_flow_is_the_standard_normal():
    """Zero last layers: every seed starts from q = N(0, I), not from a random warp."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.stats import norm

    x = jnp.array([[0.0, 1.0, -2.0], [4.5, -0.3, 7.0]])  # 7.0: outside the splines' interval
    log_q = jax.jit(lambda key, x: flows.make_flow(key, 3, flows.FlowSettings(**REDUCED))
                    .log_prob(x))(jax.random.PRNGKey(3), x)  # one compile, not op by op
    np.testing.assert_allclose(log_q, norm.logpdf(x).sum(-1), rtol=1e-5)


def test_the_module_declares_one_vi_method_after_the_autoguides():
    assert flows.METHODS == [flows.FLOW_RQS]
    method = flows.FLOW_RQS
    assert (method.name, method.family, method.psis) == ("flow:rqs", "vi", True)
    assert method.order > 205 and not method.problems()  # autoguides: 200-205
    assert "2412.08824" in method.description
