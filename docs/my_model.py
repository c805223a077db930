"""Eight schools (Rubin 1981; Gelman et al., Bayesian Data Analysis, section 5.5), non-centred.

A minimal model file for ``svi-bench``: everything the suite needs is the ``SPEC`` at the end.
The data are the eight coaching-effect estimates and their standard errors, inline, as float32.
The school effects ``theta = mu + tau * theta_raw`` are a deterministic site named in
``extra_sites``, so they are stored and scored like the latent sites.

    svi-bench check --model-file docs/my_model.py
    svi-bench run --model-file docs/my_model.py --profile smoke --seeds 1 --out my_results
    svi-bench report --results my_results --out my_results/report
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from svi_bench.models import Dataset, ModelSpec

Y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0], dtype=np.float32)
SIGMA = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0], dtype=np.float32)


def model(y: jnp.ndarray, sigma: jnp.ndarray) -> None:
    mu = numpyro.sample("mu", dist.Normal(0.0, 5.0))
    tau = numpyro.sample("tau", dist.HalfCauchy(5.0))
    with numpyro.plate("school", y.shape[0]):
        theta_raw = numpyro.sample("theta_raw", dist.Normal(0.0, 1.0))
        theta = numpyro.deterministic("theta", mu + tau * theta_raw)
        numpyro.sample("obs", dist.Normal(theta, sigma), obs=y)


def data(seed: int = 0) -> Dataset:
    """The published data: fixed, so the seed is ignored (``data_uses_seed=False``)."""
    return Dataset(model_kwargs={"y": jnp.asarray(Y), "sigma": jnp.asarray(SIGMA)})


SPEC = ModelSpec(
    name="eight_schools",
    description="eight schools, non-centred: school effects theta = mu + tau * theta_raw",
    source="Rubin (1981); Gelman et al., Bayesian Data Analysis, 3rd ed., section 5.5",
    model=model,
    data=data,
    guides={},
    reference_kind="nuts",
    data_uses_seed=False,
    extra_sites=("theta",),
)
