"""NUTS as one pure, compiled program: every chain of every seed one after another (``lax.map``),
warm-up included.

That is what NumPyro's default (``chain_method="parallel"``) does on a one-device CPU: it falls
back to sequential chains. Vectorised chains (``"vectorized"``) run every lane's tree doubling
until the deepest lane is done: on the quick grid's ``bnn`` vmapped seeds cost 1.8x (sampling) to
2.5x (warm-up) the leapfrog steps their own trees needed, and vmapped chains ran 77 s against
70 s in sequence. In sequence the program also traces in 0.6 s instead of 4-5 s and compiles
in a third less time (bnn 4.7 against 7.7 s); small models run up to 1.5x slower
(hierarchical_linreg 1.7 against 1.1 s), which is what a NumPyro user on a CPU gets. ``run_s``
(the program's time over its seeds) is a seed's own cost.

Uses NumPyro's kernel API (``NUTS.init`` / ``NUTS.sample`` in ``lax.scan``) rather than ``MCMC.run``
so the whole run is one ahead-of-time compiled function whose compile time is measured apart.
Its building blocks (``make_nuts``, ``nuts_init``, ``nuts_step``) also build the perf suite's
timed programs, so the grid and the regression gate time the same kernel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np
from numpyro.infer import NUTS

from svi_bench.benchmarks.inference import executables
from svi_bench.benchmarks.inference.settings import NUTSSettings


class NUTSRun(NamedTuple):
    """Results of NUTS for several seeds (leading axes: seed, chain)."""

    draws: dict[str, np.ndarray]  # site -> (seeds, chains, samples, *shape), constrained
    num_steps_warmup: np.ndarray  # (seeds, chains, warmup) leapfrog steps per iteration
    num_steps: np.ndarray  # (seeds, chains, samples)
    diverging: np.ndarray  # (seeds, chains, samples) bool
    energy: np.ndarray  # (seeds, chains, samples)
    compile_s: float  # time to get the executable: trace, lower, compile, or load it
    run_s: float
    cache: str  # which cache served the program: "executable", "jax" or "" (compiled)
    host_others_share: float = math.nan  # share of the host's CPU others used during the run
    cost: dict[str, float] = {}  # program_cost.COLUMNS

    @property
    def cache_hit(self) -> bool:
        """The program itself came from a cache (not a sub-computation of it)."""
        return bool(self.cache)


def make_nuts(model: Callable[..., None], settings: NUTSSettings) -> NUTS:
    """The NUTS kernel of the settings' target acceptance, tree depth and mass matrix."""
    return NUTS(
        model,
        target_accept_prob=settings.target_accept_prob,
        max_tree_depth=settings.max_tree_depth,
        dense_mass=settings.dense_mass,
    )


def nuts_init(kernel: NUTS, rng_key: jax.Array, settings: NUTSSettings,
              model_kwargs: Mapping[str, Any]) -> Any:
    """The kernel's initial state for ``settings.num_warmup`` adaptation steps (one chain per
    key when ``rng_key`` is a batch of keys)."""
    return kernel.init(rng_key, settings.num_warmup, model_args=(), model_kwargs=model_kwargs)


def nuts_step(kernel: NUTS, model_kwargs: Mapping[str, Any],
              record: Callable[[Any], Any]) -> Callable[[Any, Any], tuple]:
    """The ``lax.scan`` body of one ``kernel.sample`` step: ``(state, _) -> (state, record(state))``.
    One body for warm-up and sampling, so JAX traces it once."""

    def step(state, _):
        state = kernel.sample(state, (), model_kwargs)
        return state, record(state)

    return step


def build_nuts_program(
    model: Callable[..., None],
    model_kwargs: Mapping[str, Any],
    latent_sites: Sequence[str],
    settings: NUTSSettings,
) -> Callable[[jax.Array], tuple]:
    """The per-chain NUTS program: ``rng_key -> (draws, warmup steps, steps, diverging, energy)``."""

    def program(rng_key: jax.Array) -> tuple:
        kernel = make_nuts(model, settings)
        state = nuts_init(kernel, rng_key, settings, model_kwargs)

        step = nuts_step(
            kernel, model_kwargs, lambda s: (s.z, s.num_steps, s.diverging, s.energy)
        )
        state, warm = jax.lax.scan(step, state, None, length=settings.num_warmup)
        state, (z, num_steps, diverging, energy) = jax.lax.scan(
            step, state, None, length=settings.num_samples
        )
        constrained = jax.vmap(kernel.postprocess_fn((), model_kwargs))(z)
        draws = {site: constrained[site] for site in latent_sites}
        return draws, warm[1], num_steps, diverging, energy

    return program


def run_nuts(
    rng_keys: jax.Array,
    model: Callable[..., None],
    model_kwargs: Mapping[str, Any],
    latent_sites: Sequence[str],
    settings: NUTSSettings,
    program_key: Mapping[str, Any] | None = None,
) -> NUTSRun:
    """Run ``settings.num_chains`` chains for every key in ``rng_keys`` in one compiled program,
    every chain in sequence.

    ``program_key``: what else defines the program (model source and data hashes); with it a warm
    run loads the stored executable instead of tracing (``executables``).
    """
    chain_keys = jax.vmap(lambda k: jax.random.split(k, settings.num_chains))(rng_keys)
    one_chain = build_nuts_program(model, model_kwargs, latent_sites, settings)

    def program(keys: jax.Array) -> tuple:  # keys (seeds, chains, 2): one chain after another
        flat = jax.lax.map(one_chain, keys.reshape(-1, *keys.shape[2:]))
        return jax.tree.map(lambda x: x.reshape(*keys.shape[:2], *x.shape[1:]), flat)

    program = jax.jit(program)
    run = executables.compile_and_run(
        program, chain_keys, identity=executables.identity(
            "nuts", program_key, model, settings, sites=latent_sites))
    draws, warm_steps, num_steps, diverging, energy = jax.tree.map(np.asarray, run.out)

    return NUTSRun(
        draws=draws,
        num_steps_warmup=warm_steps,
        num_steps=num_steps,
        diverging=diverging,
        energy=energy,
        compile_s=run.compile_s,
        run_s=run.run_s,
        cache=run.cache,
        host_others_share=run.others_share,
        cost=run.cost,
    )
