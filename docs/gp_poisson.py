"""A latent Gaussian-process Poisson regression that needs float64: ``precision="float64"``.

Counts at 11 inputs on [-5, 5] with a latent log-rate ``f ~ GP(0, k)``, an exponentiated-quadratic
kernel ``k(x, x') = amplitude**2 exp(-(x - x')**2 / (2 length_scale**2))`` with a Gamma(5, 1)
prior on the length scale and a half-normal prior on the amplitude, non-centred as
``f = cholesky(K + 1e-6 I) @ f_tilde``. With length scales of a few units the 11 inputs are
strongly correlated, so ``K`` is nearly singular: in float32 its Cholesky factor is round-off
(NUTS diverges and its chains never mix), in float64 it is exact to many digits.

    svi-bench check --model-file docs/gp_poisson.py
    svi-bench run --model-file docs/gp_poisson.py --profile quick --methods nuts --seeds 1 --out gp

Without the ``precision="float64"`` line the same file runs in float32: ``check`` then warns with
the float32 errors, and the reference's failure message names precision.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from svi_bench.models import Dataset, ModelSpec

JITTER = 1e-6


def model(x: jnp.ndarray, y: jnp.ndarray) -> None:
    length_scale = numpyro.sample("length_scale", dist.Gamma(5.0, 1.0))
    amplitude = numpyro.sample("amplitude", dist.HalfNormal(1.0))
    diff = x[:, None] - x[None, :]
    kernel = amplitude**2 * jnp.exp(-0.5 * (diff / length_scale) ** 2)
    chol = jnp.linalg.cholesky(kernel + JITTER * jnp.eye(x.shape[0]))
    f_tilde = numpyro.sample("f_tilde", dist.Normal(0.0, 1.0).expand([x.shape[0]]).to_event(1))
    numpyro.sample("y", dist.Poisson(jnp.exp(chol @ f_tilde)), obs=y)


def data(seed: int = 1) -> Dataset:
    """Counts simulated from a smooth log-rate ``0.5 + sin(x / 2)``. ``jnp.asarray`` gives arrays
    in the precision in effect (the suite generates data inside the model's precision)."""
    x = np.linspace(-5.0, 5.0, 11)
    y = np.random.default_rng(seed).poisson(np.exp(np.sin(x / 2.0))).astype(np.float64)
    return Dataset(model_kwargs={"x": jnp.asarray(x), "y": jnp.asarray(y)})


SPEC = ModelSpec(
    name="gp_poisson",
    description="latent GP Poisson regression, 11 inputs, non-centred Cholesky (needs float64)",
    source="issue 14: a latent Gaussian-process Poisson regression tried as a new user would",
    model=model,
    data=data,
    guides={},
    reference_kind="nuts",
    default_data_seed=1,
    precision="float64",
)
