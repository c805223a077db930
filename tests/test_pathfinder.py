"""Pathfinder and multi-path Pathfinder (``benchmarks.methods.pathfinder``): gradient counts derived
by hand on isotropic Gaussians and checked against the evaluations BlackJAX makes, the method
contract, and settings refused with a clear message."""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.methods import pathfinder as pf
from svi_bench.benchmarks.methods.contract import check_method
from svi_bench.models import Dataset, ModelSpec

K = 4  # ELBO draws per path point in these tests


MEAN = 3.0


def _isotropic_gaussian():
    numpyro.sample("z", dist.Normal(MEAN, 1.0).expand([3]).to_event(1))


ISOTROPIC_GAUSSIAN = ModelSpec(
    name="isotropic_gaussian_3d", description="N(3, I) in three dimensions", source="this test",
    model=_isotropic_gaussian, data=lambda seed=0: Dataset(model_kwargs={}), guides={},
    reference_kind="exact", data_uses_seed=False)


def hand_iterations(distance: float) -> int:
    """L-BFGS iterations on an isotropic unit Gaussian from ``distance`` < 10 to its mean, by hand.
    optax's first step is the gradient scaled to length at most 1 (accepted at the line search's
    first trial): from within 1 it lands on the mean, and a zero step (zero gradient) stops it,
    2 iterations; from further it moves 1, the secant step then lands on the mean of the
    quadratic, and the zero step stops it, 3 iterations."""
    return 2 if distance <= 1.0 else 3


def hand_path_grads(iterations: int) -> int:
    """2 + 2 * iterations L-BFGS evaluations (one line-search trial each), iterations * K ELBO."""
    return 2 + 2 * iterations + iterations * K


CALLS: list = []
MAXITER = 10


@functools.cache
def _counting_approximate():
    """Pathfinder on N(0, I) whose log density counts its evaluations in ``CALLS``: compiled
    once for every start (the start is an argument)."""
    import blackjax

    def logdensity(x):
        jax.debug.callback(lambda _: CALLS.append(1), jax.lax.stop_gradient(x[0]))
        return -0.5 * jnp.sum(x ** 2)

    return jax.jit(lambda k, x0: blackjax.vi.pathfinder.approximate(
        k, logdensity, x0, K, maxiter=MAXITER, maxcor=5))


@pytest.mark.parametrize("start", [[1.0, -0.5, 2.0], [0.3, 0.2, -0.4]])
def test_the_rule_counts_what_blackjax_evaluates_on_a_standard_gaussian(start):
    """Every evaluation BlackJAX makes, minus the ELBO draws at the padded path points it
    evaluates but never compares, is the module's count, and the hand count."""
    x0 = jnp.array(start)
    CALLS.clear()
    _, info = _counting_approximate()(jax.random.PRNGKey(0), x0)
    jax.block_until_ready(info)
    iterations = pf.lbfgs_iterations(np.asarray(info.path.elbo), np.asarray(info.path.position))
    assert iterations == hand_iterations(float(jnp.linalg.norm(x0)))
    padded = (MAXITER + 1 - iterations) * K
    assert len(CALLS) - padded == pf.path_grad_evals(iterations, K) == hand_path_grads(iterations)


def test_iterations_are_read_off_the_padded_path():
    moving = np.array([[0.0], [1.0], [2.0], [2.0], [2.0]])
    assert pf.lbfgs_iterations(np.array([1.0, 2.0, -np.inf, -np.inf, -np.inf]), moving) == 2
    # a last iteration with a zero step: one past the last finite ELBO
    assert pf.lbfgs_iterations(np.array([1.0, 2.0, 3.0, -np.inf, -np.inf]), moving) == 3
    # a non-finite ELBO inside the path does not shorten it
    assert pf.lbfgs_iterations(np.array([1.0, -np.inf, -np.inf, -np.inf, -np.inf]), moving) == 2
    assert pf.multipath_grad_evals([3, 5], pf.MultiPathfinderSettings(
        num_draws=10, maxiter=20, num_elbo_samples=K, num_paths=2)) == \
        pf.path_grad_evals(3, K) + pf.path_grad_evals(5, K) + 2 * 10


@pytest.mark.slow
def test_multipathfinder_counts_every_path_and_its_pool():
    """End to end on N(3, I), where NumPyro's initial points (in (-2, 2)^3) are 1.7 to 8.7 from
    the mean: each path's hand count (3 iterations) plus the pool's log densities."""
    settings = pf.MultiPathfinderSettings(num_draws=200, maxiter=10, num_elbo_samples=K,
                                          num_paths=2)
    ds = ISOTROPIC_GAUSSIAN.make_data()
    info = latent_info(ISOTROPIC_GAUSSIAN.model, ds.model_kwargs)
    keys = jax.vmap(jax.random.PRNGKey)(np.arange(2, dtype=np.uint32))
    result = pf.build_multipathfinder(ISOTROPIC_GAUSSIAN, ds, settings, info)(keys)
    assert result.draws["z"].shape == (2, 1, 200, 3)
    assert result.log_weights is None and not pf.MULTIPATHFINDER.psis
    assert result.seed_columns["num_steps"].tolist() == [2 * 3] * 2
    assert result.grad_evals.tolist() == [2 * hand_path_grads(3) + 2 * 200.0] * 2
    # exact Gaussians: near-constant weights, whose Pareto fit BlackJAX leaves NaN or small
    assert not np.any(result.seed_columns["pathfinder_khat"] > 0.5)
    assert np.allclose(result.draws["z"].mean(2), MEAN, atol=0.3)


@pytest.mark.slow
def test_pathfinder_passes_the_method_contract():
    """The contract at the smoke settings (its quick ones compile the same program with a longer
    path; smoke keeps this test to two short compiles)."""
    method = dataclasses.replace(pf.PATHFINDER, defaults={**pf.DEFAULTS,
                                                          "quick": pf.DEFAULTS["smoke"]})
    failed = [c for c in check_method(method) if not c.ok]
    assert not failed, failed


@pytest.mark.parametrize(("changes", "message"), [
    (dict(num_draws=0), "num_draws must be an integer >= 1, got 0"),
    (dict(maxiter=2.5), "maxiter must be an integer >= 1, got 2.5"),
    (dict(maxcor=True), "maxcor must be an integer >= 1, got True"),
    (dict(ftol=-1.0), "ftol must be a finite number >= 0, got -1.0"),
    (dict(gtol=float("nan")), "gtol must be a finite number >= 0, got nan"),
    (dict(precision="float16"), "precision must be one of float32, float64, got 'float16'"),
])
def test_bad_settings_are_refused_with_what_is_wrong(changes, message):
    good = pf.PathfinderSettings(num_draws=10, maxiter=5)
    good.validate()
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(good, **changes).validate()


def test_multipathfinder_needs_two_paths_and_every_profile_validates():
    with pytest.raises(ValueError, match="num_paths must be an integer >= 2, got 1"):
        pf.MultiPathfinderSettings(num_draws=10, maxiter=5, num_paths=1).validate()
    for method in pf.METHODS:
        for profile in ("smoke", "quick", "paper"):
            method.settings(profile, "coin")
        assert method.family == "vi" and method.order >= 300 and not method.problems()
