"""A user's method in one file: NumPyro's Laplace approximation, judged like every other method.

The Laplace approximation (Laplace 1774; in Bayesian computation Tierney and Kadane 1986, JASA
81) fits the posterior's mode by SVI with a point-mass guide and takes a Gaussian in the
unconstrained space with the inverse Hessian of the negative log density there as its
covariance (``numpyro.infer.autoguide.AutoLaplaceApproximation``). It is not in the suite's grid.

    svi-bench check --method-file docs/my_method.py
    svi-bench run --method-file docs/my_method.py --methods nuts,laplace --models coin \
        --profile smoke --seeds 2 --out my_results
    svi-bench report --results my_results --out my_results/report

The file needs nothing from the repository but the installed ``svi_bench``: it declares its
settings (a frozen dataclass with ``precision`` and ``validate``), its defaults per profile, and
``build``, which returns a program taking one key per seed and returning a ``RunResult``.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoLaplaceApproximation

from svi_bench.benchmarks.methods import Method, RunResult, timed


@dataclass(frozen=True)
class LaplaceSettings:
    """``num_steps`` Adam steps at ``learning_rate`` to the mode, then ``num_draws`` draws."""

    num_steps: int
    learning_rate: float
    num_draws: int
    precision: str = "float32"

    def validate(self) -> None:
        for name in ("num_steps", "num_draws"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.learning_rate, int | float) or not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate!r}")
        if self.precision not in ("float32", "float64"):
            raise ValueError(f"precision must be float32 or float64, got {self.precision!r}")


DEFAULTS = {
    "smoke": dict(num_steps=500, learning_rate=0.02, num_draws=400),
    "quick": dict(num_steps=4000, learning_rate=0.01, num_draws=4000),
    "paper": dict(num_steps=10000, learning_rate=0.005, num_draws=20000),
}


def build(spec, data, settings, latent_info, program_key=None):
    """Every seed's fit and draws in one compiled program (seeds in sequence), timed apart
    from its compile by ``timed``."""
    kwargs = dict(data.model_kwargs)

    def one_seed(rng_key):
        fit_key, draw_key = jax.random.split(rng_key)
        guide = AutoLaplaceApproximation(spec.model)
        svi = SVI(spec.model, guide, numpyro.optim.Adam(settings.learning_rate), Trace_ELBO())
        state = svi.init(fit_key, **kwargs)
        state, losses = jax.lax.scan(lambda s, _: svi.update(s, **kwargs), state, None,
                                     length=settings.num_steps)
        params = svi.get_params(state)
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(p))
                                    for p in jax.tree_util.tree_leaves(params)]))
        draws = guide.sample_posterior(draw_key, params, sample_shape=(settings.num_draws,))
        draws = {site: draws[site] for site in latent_info.sites}
        if spec.extra_sites:  # deterministic sites: the model replayed on the draws
            extra = Predictive(spec.model, posterior_samples=draws,
                               return_sites=list(spec.extra_sites))(draw_key, **kwargs)
            draws.update({site: extra[site] for site in spec.extra_sites})
        return losses, draws, finite

    def program(rng_keys):
        out, timing = timed(jax.jit(lambda keys: jax.lax.map(one_seed, keys)), rng_keys,
                            identity=program_key)
        losses, draws, finite = out
        seeds = len(losses)
        # one gradient per step, then the Hessian: about one gradient per latent dimension
        grads = settings.num_steps + latent_info.unconstrained_dim
        return RunResult(
            draws={site: np.asarray(v)[:, None] for site, v in draws.items()},  # one chain
            grad_evals=np.full(seeds, float(grads)),
            compile_s=timing.compile_s, run_s=timing.run_s, cache=timing.cache,
            host_others_share=timing.host_others_share, cost=timing.cost,
            losses=np.asarray(losses), params_finite=np.asarray(finite),
            columns={"num_draws": settings.num_draws, "num_steps": settings.num_steps},
        )

    return program


METHOD = Method(
    name="laplace",
    family="vi",
    description=("Laplace approximation (Tierney and Kadane 1986, JASA 81): a Gaussian at the "
                 "posterior mode in the unconstrained space with the inverse Hessian as its "
                 "covariance, NumPyro's AutoLaplaceApproximation fitted by SVI."),
    settings_type=LaplaceSettings,
    defaults=DEFAULTS,
    build=build,
    budget="num_steps",  # what the anytime study sweeps for its accuracy-against-cost curve
)
