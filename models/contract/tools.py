"""What the contract checks are made of: the failure they raise, the state they share, and small
tracing and data helpers (also used by the model tests)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro import handlers
from scipy import special

from svi_bench.models.base import Dataset, ModelSpec


class Fail(Exception):
    """Raised inside a check: the message says what is wrong and how to fix it."""


class Detected(str):
    """A check's note when a user's model passed by what the contract detected rather than what
    it declared: ``run`` says so in one line (``Check.detected``)."""


class Context:
    """What later checks reuse: the default data, and the model's latent sites and a point."""

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self.ds: Dataset | None = None
        self.latents: dict[str, tuple[int, ...]] = {}
        self.point: dict[str, Any] = {}

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.ds.model_kwargs)


# --------------------------------------------------------------------------- tracing


def model_trace(model, kwargs: dict[str, Any], seed: int = 0) -> dict:
    """A model trace; latents drawn by init_to_uniform, which also handles improper priors."""
    from numpyro.infer.initialization import init_to_uniform

    seeded = handlers.substitute(handlers.seed(model, seed), substitute_fn=init_to_uniform)
    return handlers.trace(seeded).get_trace(**kwargs)


def guide_trace(guide, kwargs: dict[str, Any], seed: int = 1) -> dict:
    return handlers.trace(handlers.seed(guide, seed)).get_trace(**kwargs)


def latent_shapes(trace: dict) -> dict[str, tuple[int, ...]]:
    """Non-observed, non-auxiliary sample sites, in trace order."""
    return {
        name: tuple(jnp.shape(site["value"]))
        for name, site in trace.items()
        if site["type"] == "sample"
        and not site.get("is_observed", False)
        and not (site.get("infer") or {}).get("is_auxiliary", False)
    }


def site_shapes(trace: dict) -> dict[str, tuple[int, ...]]:
    """Latent sample sites and deterministic sites (what a reparameterisation may expose)."""
    out = latent_shapes(trace)
    out.update({name: tuple(jnp.shape(site["value"])) for name, site in trace.items()
                if site["type"] == "deterministic"})
    return out


def log_joint(model, kwargs: dict[str, Any], point: dict[str, Any]) -> float:
    from numpyro.infer.util import log_density

    return float(log_density(model, (), kwargs, point)[0])


def batched_log_joint(spec: ModelSpec, ds: Dataset, params: dict[str, np.ndarray]) -> np.ndarray:
    """The model's log joint at a batch of constrained latent values."""
    from numpyro.infer.util import log_density

    def one(p):
        return log_density(spec.model, (), dict(ds.model_kwargs), p)[0]

    batch = {k: jnp.asarray(v, dtype=jnp.float32) for k, v in params.items()}
    return np.asarray(jax.vmap(one)(batch))


def elbo_loss(model, guide, kwargs: dict[str, Any]) -> float:
    from numpyro.infer import Trace_ELBO

    return float(Trace_ELBO().loss(jax.random.PRNGKey(2), {}, model, guide, **kwargs))


def autonormal_loss(model, kwargs: dict[str, Any]) -> float:
    """AutoNormal's loss after SVI initialisation (what every autoguide run starts from)."""
    import numpyro
    from numpyro.infer import SVI, Trace_ELBO
    from numpyro.infer.autoguide import AutoNormal

    svi = SVI(model, AutoNormal(model), numpyro.optim.Adam(1e-3), Trace_ELBO())
    state = svi.init(jax.random.PRNGKey(0), **kwargs)
    return float(svi.evaluate(state, **kwargs))


def prior_draws(spec: ModelSpec, ds: Dataset, latents, n: int = 32) -> dict[str, np.ndarray]:
    from numpyro.infer import Predictive

    prior = Predictive(spec.model, num_samples=n)(jax.random.PRNGKey(0), **ds.model_kwargs)
    return {k: np.asarray(prior[k]) for k in latents}


# --------------------------------------------------------------------------- data


def flatten_dataset(ds: Dataset) -> dict[str, np.ndarray]:
    out = {}
    for part in ("model_kwargs", "true_values", "extras"):
        for key, value in (getattr(ds, part) or {}).items():
            out[f"{part}.{key}"] = np.asarray(value)
    return out


def datasets_equal(a: Dataset, b: Dataset) -> bool:
    fa, fb = flatten_dataset(a), flatten_dataset(b)
    return fa.keys() == fb.keys() and all(
        fa[k].shape == fb[k].shape and np.array_equal(fa[k], fb[k]) for k in fa
    )


# --------------------------------------------------------------------------- grids


def trapezoid_weights(axis: np.ndarray) -> np.ndarray:
    d = np.diff(axis)
    w = np.zeros_like(axis)
    w[:-1] += d / 2
    w[1:] += d / 2
    return w


def grid_summary(axes: list[np.ndarray], lp: np.ndarray) -> tuple[float, list, list]:
    """log Z, marginal means and sds of a gridded log density (trapezoid rule, per axis)."""
    logw = lp.copy()
    for i, axis in enumerate(axes):
        shape = [1] * len(axes)
        shape[i] = -1
        logw = logw + np.log(trapezoid_weights(axis)).reshape(shape)
    log_z = float(special.logsumexp(logw))
    w = np.exp(logw - log_z)
    means, sds = [], []
    for i, axis in enumerate(axes):
        marginal = w.sum(axis=tuple(j for j in range(len(axes)) if j != i))
        mean = float(np.sum(marginal * axis))
        means.append(mean)
        sds.append(float(np.sqrt(np.sum(marginal * (axis - mean) ** 2))))
    return log_z, means, sds
