"""A small, nearly Gaussian posterior the suite's built-in models do not have: one parameter
measured precisely (posterior sd about 0.01), the others loosely (sd 0.1 to 0.5).

The ``step_size`` study's unseen-posterior experiment (issue 30 item 8): a user-style model file
on which NUTS passes while AutoMultivariateNormal and AutoNormal at the quick profile's settings
(Adam 5e-3, 4000 steps x 4 particles) fail on about half the seeds: ``level``'s guide scale has
not finished shrinking from ``init_scale`` 0.1 to 0.01. The experiment varies the rate, the step
count and the guide's ``init_scale`` (``docs/guide/studies.md``, ``step_size``).

    svi-bench run --model-file tests/data/precise_gaussian.py --profile quick \\
        --methods automvn,autonormal --seeds 24 --set 'guide_options={"init_scale": 0.01}'
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from svi_bench.models import Dataset, ModelSpec

N_PRECISE, NOISE_PRECISE = 100, 0.1  # posterior sd of ``level``: 0.1 / sqrt(100) = 0.01
N_LOOSE, N_SPREAD = 4, 50


def model(y_precise: jnp.ndarray, y_loose: jnp.ndarray, y_spread: jnp.ndarray) -> None:
    level = numpyro.sample("level", dist.Normal(0.0, 1.0))
    offset = numpyro.sample("offset", dist.Normal(0.0, 1.0))
    spread = numpyro.sample("spread", dist.HalfNormal(2.0))
    numpyro.sample("precise", dist.Normal(level, NOISE_PRECISE).expand([N_PRECISE]),
                   obs=y_precise)
    numpyro.sample("loose", dist.Normal(level + offset, 1.0).expand([N_LOOSE]), obs=y_loose)
    numpyro.sample("spread_obs", dist.Normal(0.0, spread).expand([N_SPREAD]), obs=y_spread)


def data(seed: int = 0) -> Dataset:
    """Fixed data (drawn once from a seeded generator: level 0.7, offset -0.4, spread 1.3)."""
    rng = np.random.default_rng(20261208)
    y_precise = 0.7 + NOISE_PRECISE * rng.standard_normal(N_PRECISE)
    y_loose = 0.3 + rng.standard_normal(N_LOOSE)
    y_spread = 1.3 * rng.standard_normal(N_SPREAD)
    return Dataset(model_kwargs={k: jnp.asarray(v, dtype=jnp.float32) for k, v in (
        ("y_precise", y_precise), ("y_loose", y_loose), ("y_spread", y_spread))})


SPEC = ModelSpec(
    name="precise_gaussian",
    description="nearly Gaussian posterior, one parameter's sd about 0.01 (level), two loose",
    source="svi-bench step_size study (issue 30 item 8): a posterior the suite had not seen",
    model=model,
    data=data,
    guides={},
    reference_kind="nuts",
    data_uses_seed=False,
)
