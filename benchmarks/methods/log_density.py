"""The one bridge from a NumPyro model to a plain log density, for every method that works on
one (BlackJAX's samplers and Pathfinder, FlowJAX's flows).

``numpyro.infer.util.initialize_model`` gives the unconstrained potential (the Jacobians of the
constraining transforms included) and the map back to the constrained space with the
deterministic sites. The bridge flattens the unconstrained latents into one vector, so a method
sees ``logdensity_fn(x)`` on R^D and hands back draws of ``x``; ``constrain`` turns each draw into
the model's sites. Call it inside the traced program (``jax.jit``): NumPyro's initialisation then
costs nothing at run time beyond its first valid point, and the model's precision is the one the
program is traced in (the runner's ``precision_scope``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple


class LogDensity(NamedTuple):
    """A model's posterior as a log density on R^D, with the way back to its sites."""

    logdensity_fn: Callable[[Any], Any]  # x (D,) -> log p(x, z(x)) + log |det J|, unnormalised
    initial_position: Any  # (D,): NumPyro's initial point (init_to_uniform, checked valid)
    unravel: Callable[[Any], dict[str, Any]]  # x -> {site: unconstrained value}
    constrain: Callable[[Any], dict[str, Any]]  # x -> {site: constrained value} of ``sites``
    dim: int


def log_density(rng_key: Any, model: Callable[..., None], model_kwargs: Mapping[str, Any],
                sites: Sequence[str]) -> LogDensity:
    """The bridge for ``model(**model_kwargs)``: ``rng_key`` draws NumPyro's initial point;
    ``sites`` (latent and deterministic extra sites) are what ``constrain`` returns."""
    from jax.flatten_util import ravel_pytree
    from numpyro.infer.util import initialize_model

    info = initialize_model(rng_key, model, model_kwargs=dict(model_kwargs))
    flat, unravel = ravel_pytree(info.param_info.z)
    potential, postprocess = info.potential_fn, info.postprocess_fn

    def logdensity_fn(x: Any) -> Any:
        return -potential(unravel(x))

    def constrain(x: Any) -> dict[str, Any]:
        values = postprocess(unravel(x))
        return {site: values[site] for site in sites}

    return LogDensity(logdensity_fn, flat, unravel, constrain, int(flat.size))


def constrain_draws(bridge: LogDensity, xs: Any) -> dict[str, Any]:
    """``constrain`` over a leading axis of draws ``xs`` (n, D) -> {site: (n, *shape)}."""
    import jax

    return jax.vmap(bridge.constrain)(xs)
