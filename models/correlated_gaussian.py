"""Rotated, correlated 2-D Gaussian (001, "Autoguides: Simpler & Faster").

The document's ``model_forauto``: improper flat priors (``ImproperUniform(constraints.real, (),
())``) on ``x`` and ``y`` and a factor equal to the log of an unnormalised Gaussian with principal
sds ``sig1 = 1.0``, ``sig2 = 3.0`` rotated by ``theta = 45 deg``. The posterior is exactly
bivariate normal with zero mean and covariance R diag(1, 9) R^T = [[5, 4], [4, 5]]: marginal
sds sqrt(5) ~ 2.236 and correlation 0.8 (the covariance the document's AutoMultivariateNormal
recovers, [[4.92, 4.03], [4.03, 5.18]]). The covariance is computed here from the factor's
quadratic form, not typed in.

The document takes ``jnp.log(factor(x, y))`` with ``factor = exp(log_fac)``; evaluated as written
that underflows to -inf (NaN gradients) about 13 sds out in float32 (XLA may fold log(exp(.))
under jit, but nothing guarantees it). The model uses ``log_fac`` directly, which is the same
function wherever the document's is finite.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from svi_bench.models.base import Dataset, ModelSpec

SIG1, SIG2, THETA = 1.0, 3.0, 45 * np.pi / 180


def log_factor(x, y):
    """The document's log_fac: -(1/2) [((c x - s y) / sig1)^2 + ((s x + c y) / sig2)^2]."""
    c, s = jnp.cos(THETA), jnp.sin(THETA)
    return -1.0 / 2.0 * (((c * x - s * y) / SIG1) ** 2 + ((s * x + c * y) / SIG2) ** 2)


def model() -> None:
    x = numpyro.sample("x", dist.ImproperUniform(constraints.real, (), ()))
    y = numpyro.sample("y", dist.ImproperUniform(constraints.real, (), ()))
    numpyro.factor("logfac", log_factor(x, y))


def data(seed: int) -> Dataset:
    """No data: the density is fixed; ``seed`` is ignored."""
    return Dataset(model_kwargs={}, true_values=None)


def precision() -> np.ndarray:
    """The precision matrix P of the factor, log_fac = -(1/2) [x y] P [x y]^T."""
    c, s = np.cos(THETA), np.sin(THETA)
    a = np.array([c, -s]) / SIG1  # first quadratic term: (a . v)^2
    b = np.array([s, c]) / SIG2  # second quadratic term: (b . v)^2
    return np.outer(a, a) + np.outer(b, b)


def covariance() -> np.ndarray:
    return np.linalg.inv(precision())


def exact_sampler(rng: np.random.Generator, n: int, ds: Dataset) -> dict[str, np.ndarray]:
    draws = rng.multivariate_normal(np.zeros(2), covariance(), size=n)
    return {"x": draws[:, 0], "y": draws[:, 1]}


def exact_moments(ds: Dataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    sd = np.sqrt(np.diag(covariance()))
    return {"x": (np.asarray(0.0), np.asarray(sd[0])), "y": (np.asarray(0.0), np.asarray(sd[1]))}


def log_evidence(ds: Dataset) -> float:
    """Flat priors contribute nothing: log Z = log(2 pi / sqrt(det P)) = log(2 pi sig1 sig2)."""
    return float(np.log(2.0 * np.pi) - 0.5 * np.linalg.slogdet(precision())[1])


SPEC = ModelSpec(
    name="correlated_gaussian",
    description="Improper flat priors times a rotated Gaussian factor (sds 1 and 3 at 45 deg): "
    "exact bivariate normal, marginal sd sqrt(5), correlation 0.8.",
    source="001_72ee50f5248cddec.txt, 'Autoguides: Simpler & Faster'",
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
    notes="Covariance [[5, 4], [4, 5]] from the factor's precision matrix; log Z = log(6 pi). "
    "The factor is log_fac itself rather than the document's log(exp(log_fac)), which underflows "
    "to -inf about 13 sds out in float32. No manual guide in the document (it uses "
    "AutoMultivariateNormal).",
)
