"""Neal's funnel: a validation model with exact draws and nonlinear dependence.

``v ~ Normal(0, V_SCALE)`` and, given v, ``x_i ~ Normal(0, exp(v / 2))`` for ``DIM`` components
(Neal 2003, "Slice sampling", section 8). No data: the posterior is the prior, drawn exactly. Every
pair of components is uncorrelated (E[x_i v] = E[x_i x_j] = 0), yet x's scale follows v: the
dependence is the funnel's neck, which a correlation matrix cannot see. It is here so that the
joint checks are themselves checked on every method: a mean-field guide gets the marginals
roughly right and the dependence wrong, and ``c2st_acc`` (or ``max_sliced_w1``) must say so.

``V_SCALE`` is 1.5, not Neal's 3: x's sd then spans exp(+-1.5) over +-2 sd of v (a factor of 20)
instead of a factor of 400, which keeps NUTS's trees and every grid's cost small while the neck
stays far from Gaussian (x's kurtosis is 3 exp(V_SCALE^2) = 28).
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from svi_bench.models.base import Dataset, ModelSpec

V_SCALE = 1.5
DIM = 4


def model() -> None:
    v = numpyro.sample("v", dist.Normal(0.0, V_SCALE))
    numpyro.sample("x", dist.Normal(jnp.zeros(DIM), jnp.exp(v / 2)).to_event(1))


def data(seed: int) -> Dataset:
    """No data: the density is fixed; ``seed`` is ignored."""
    return Dataset(model_kwargs={}, true_values=None)


def exact_sampler(rng: np.random.Generator, n: int, ds: Dataset) -> dict[str, np.ndarray]:
    v = rng.normal(0.0, V_SCALE, size=n)
    x = rng.standard_normal((n, DIM)) * np.exp(v / 2)[:, None]
    return {"v": v, "x": x}


def x_sd() -> float:
    """sd of each x_i: Var(x_i) = E[exp(v)] = exp(V_SCALE^2 / 2)."""
    return math.exp(V_SCALE**2 / 4)


def exact_moments(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {"v": (np.asarray(0.0), np.asarray(V_SCALE)),
            "x": (np.zeros(DIM), np.full(DIM, x_sd()))}


def log_evidence(ds: Dataset) -> float:
    """A normalised prior and no observations: log Z = 0."""
    return 0.0


SPEC = ModelSpec(
    name="funnel",
    description=f"Neal's funnel, v ~ N(0, {V_SCALE}) and {DIM} x_i ~ N(0, exp(v/2)): exact draws, "
    "uncorrelated components with nonlinear dependence (5 unconstrained dimensions).",
    source="Neal (2003), 'Slice sampling', Annals of Statistics 31(3), section 8",
    model=model,
    data=data,
    guides={},
    reference_kind="exact",
    default_data_seed=0,
    size_defaults={},
    data_uses_seed=False,
    exact_sampler=exact_sampler,
    exact_moments=exact_moments,
    log_evidence=log_evidence,
    notes="A validation model for the joint checks, not from the seed documents: correlations "
    "are all zero, so corr_err_max cannot see a mean-field guide's error here; c2st_acc can. "
    f"v's scale is {V_SCALE} (Neal's 3 makes NUTS's trees and the grid costly).",
)
