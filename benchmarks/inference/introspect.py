"""What a model's latent space looks like: site names, shapes and unconstrained dimension."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple


class LatentInfo(NamedTuple):
    sites: tuple[str, ...]
    shapes: dict[str, tuple[int, ...]]
    unconstrained_dim: int


def _latent_sites(trace: Mapping[str, Any]) -> tuple[str, ...]:
    """The trace's latent sample sites: not observed, not auxiliary."""
    return tuple(
        name
        for name, site in trace.items()
        if site["type"] == "sample"
        and not site["is_observed"]
        and not site.get("infer", {}).get("is_auxiliary", False)
    )


def latent_info(model: Callable[..., None], model_kwargs: Mapping[str, Any], *,
                abstract: bool = False, check_init: bool = False) -> LatentInfo:
    """The model's latent sample sites (not observed, not auxiliary) and their dimensions.

    The concrete way runs NumPyro's initialisation eagerly, op by op (seconds): it raises
    NumPyro's ``RuntimeError`` when no initial point has a finite density and gradient.
    ``abstract=True`` evaluates the initialisation under ``jax.eval_shape``: shapes only,
    nothing compiled or run, so milliseconds instead of seconds; it skips the concrete checks of
    the initial point, and falls back to the concrete way for a model that needs concrete values
    while tracing. ``check_init=True`` (with ``abstract``) keeps the checks at a fraction of the
    cost: the same initialisation runs as one compiled program (JAX's persistent cache serves
    its compile on a warm run), and only a model it finds invalid is initialised the concrete
    way, which raises NumPyro's own error (with its validation warnings)."""
    import jax

    if abstract:
        try:
            info = _abstract_latent_info(model, model_kwargs)
            if not check_init or _initial_point_valid(model, model_kwargs):
                return info
        except (jax.errors.JAXTypeError, jax.errors.JAXIndexError):
            pass  # e.g. Python control flow on a sampled value: initialise it for real
    import numpy as np
    from numpyro.infer.util import initialize_model

    info = initialize_model(jax.random.PRNGKey(0), model, model_kwargs=dict(model_kwargs))
    tr = info.model_trace  # an initialised trace: ImproperUniform sites cannot be sampled
    sites = _latent_sites(tr)
    shapes = {name: tuple(np.shape(tr[name]["value"])) for name in sites}
    dim = int(sum(np.size(v) for v in info.param_info.z.values()))
    return LatentInfo(sites=sites, shapes=shapes, unconstrained_dim=dim)


def _abstract_latent_info(model: Callable[..., None], model_kwargs: Mapping[str, Any]) -> LatentInfo:
    import math

    import jax
    from numpyro.infer.util import initialize_model

    names: list[tuple[str, ...]] = []

    def shapes_of(rng_key):
        info = initialize_model(rng_key, model, model_kwargs=dict(model_kwargs))
        names.append(_latent_sites(info.model_trace))
        return info.param_info.z, {n: info.model_trace[n]["value"] for n in names[-1]}

    key = jax.ShapeDtypeStruct((2,), jax.numpy.uint32)  # a PRNGKey's shape: nothing computed
    z, values = jax.eval_shape(shapes_of, key)
    sites = names[-1]
    dim = sum(math.prod(leaf.shape) for leaf in jax.tree_util.tree_leaves(z))
    return LatentInfo(sites=sites, shapes={n: tuple(values[n].shape) for n in sites},
                      unconstrained_dim=int(dim))


def _initial_point_valid(model: Callable[..., None], model_kwargs: Mapping[str, Any]) -> bool:
    """NumPyro's validity test of the initial point from ``PRNGKey(0)`` (finite potential energy
    and gradient, up to 100 tries), compiled as one program instead of run op by op."""
    import jax
    import jax.numpy as jnp
    from numpyro.infer.util import initialize_model

    def valid(rng_key):
        p = initialize_model(rng_key, model, model_kwargs=dict(model_kwargs)).param_info
        ok = jnp.isfinite(p.potential_energy)
        for g in jax.tree_util.tree_leaves(p.z_grad):
            ok = ok & jnp.all(jnp.isfinite(g))
        return ok

    return bool(jax.jit(valid)(jax.random.PRNGKey(0)))
