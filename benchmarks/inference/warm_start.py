"""Warm starts (001, "Pre-Training SVI") as compiled programs: a fit on new data from scratch or
from a previous fit, for SVI guides and for NUTS.

SVI: ``scratch(key, data)`` initialises the guide as usual, ``warm(key, params, data)`` through
``SVI.init(rng_key, init_params=params)`` with the previous fit's (constrained) parameters, the
document's ``svi.run(..., init_params=result.params)``. NUTS's fair counterpart: ``fresh`` runs its
full warm-up; ``reuse`` starts at the previous chain's last position with the previous run's
adapted step size and inverse mass matrix, keeps the mass matrix fixed and runs a short warm-up
(dual averaging of the step size only, from the given one). The data are traced arguments, so one
executable per program serves every data set of the same size; seeds run together under vmap.
Compile time is measured apart from run time (``jax_setup.compile_timed``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import NUTS, Predictive

from svi_bench.benchmarks.inference import host_lock, jax_setup
from svi_bench.benchmarks.inference.nuts import make_nuts, nuts_step
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.svi import make_svi, svi_steps


class _Compiled:
    """Jitted programs compiled once each on first call; ``compile_s`` sums their compiles."""

    def __init__(self) -> None:
        self.compile_s = 0.0
        self._compiled: dict[str, Any] = {}

    def call(self, name: str, program, *args) -> tuple[Any, float]:
        """``(host outputs, run seconds)`` of ``program(*args)``."""
        if name not in self._compiled:
            compiled, seconds, _ = jax_setup.compile_timed(program, *args)
            self._compiled[name] = compiled
            self.compile_s += seconds
        with host_lock.timed_section():
            start = time.perf_counter()
            out = jax.block_until_ready(self._compiled[name](*args))
            seconds = time.perf_counter() - start
        return out, seconds


class SVIPrograms(_Compiled):
    """``scratch(keys, data)`` and ``warm(keys, params, data)`` of one guide, vmapped over seeds:
    each returns ``(params, losses (seeds, steps), draws {site: (seeds, num_draws, ...)})``."""

    def __init__(self, model: Callable[..., None], make_guide: Callable[[], Any],
                 settings: SVISettings, sites: Sequence[str]):
        super().__init__()

        def finish(svi, guide, state, key, data):
            state, losses = svi_steps(svi, state, data, settings.num_steps)
            params = svi.get_params(state)
            draws = Predictive(guide, params=params, num_samples=settings.num_draws)(key, **data)
            return params, losses, {s: draws[s] for s in sites}

        def scratch(key, data):
            fit_key, draw_key = jax.random.split(key)
            guide = make_guide()
            svi = make_svi(model, guide, settings)
            return finish(svi, guide, svi.init(fit_key, **data), draw_key, data)

        def warm(key, params, data):
            fit_key, draw_key = jax.random.split(key)
            guide = make_guide()
            svi = make_svi(model, guide, settings)
            state = svi.init(fit_key, init_params=params, **data)
            return finish(svi, guide, state, draw_key, data)

        self._scratch = jax.jit(jax.vmap(scratch, in_axes=(0, None)))
        self._warm = jax.jit(jax.vmap(warm, in_axes=(0, 0, None)))

    def scratch(self, keys: jax.Array, data: Mapping[str, Any]) -> tuple[Any, float]:
        return self.call("scratch", self._scratch, keys, dict(data))

    def warm(self, keys: jax.Array, params: Any, data: Mapping[str, Any]) -> tuple[Any, float]:
        return self.call("warm", self._warm, keys, params, dict(data))


def reuse_kernel(model: Callable[..., None], settings: NUTSSettings, step_size: Any,
                 inverse_mass_matrix: Any, adapt_step_size: bool = True) -> NUTS:
    """A NUTS kernel started at a previous run's adapted step size and inverse mass matrix; the
    mass matrix stays fixed, the step size is re-tuned by a short dual averaging if asked."""
    return NUTS(model, step_size=step_size, inverse_mass_matrix=inverse_mass_matrix,
                adapt_step_size=adapt_step_size, adapt_mass_matrix=False,
                target_accept_prob=settings.target_accept_prob,
                max_tree_depth=settings.max_tree_depth)


class NUTSPrograms(_Compiled):
    """``fresh(keys, data)`` (full warm-up) and ``reuse(keys, previous, data)`` (``reuse_warmup``
    iterations from the previous chain's end), one chain per seed under vmap. Each returns
    ``(draws, carry, leapfrog steps per iteration (seeds, warm-up + samples))`` where ``carry`` is
    ``(last z, step size, inverse mass matrix)``, what the next reuse starts from."""

    def __init__(self, model: Callable[..., None], settings: NUTSSettings, reuse_warmup: int,
                 sites: Sequence[str]):
        super().__init__()

        def sample(kernel, state, warmup, data):
            step = nuts_step(kernel, data, lambda s: (s.z, s.num_steps))
            state, (_, warm_steps) = jax.lax.scan(step, state, None, length=warmup)
            adapted = (state.adapt_state.step_size, state.adapt_state.inverse_mass_matrix)
            state, (z, steps) = jax.lax.scan(step, state, None, length=settings.num_samples)
            constrained = jax.vmap(kernel.postprocess_fn((), data))(z)
            draws = {s: constrained[s] for s in sites}
            return draws, (state.z, *adapted), jnp.concatenate([warm_steps, steps])

        def fresh(key, data):
            kernel = make_nuts(model, settings)
            state = kernel.init(key, settings.num_warmup, model_args=(), model_kwargs=data)
            return sample(kernel, state, settings.num_warmup, data)

        def reuse(key, previous, data):
            z, step_size, inverse_mass_matrix = previous
            kernel = reuse_kernel(model, settings, step_size, inverse_mass_matrix)
            state = kernel.init(key, reuse_warmup, init_params=z, model_args=(), model_kwargs=data)
            return sample(kernel, state, reuse_warmup, data)

        self._fresh = jax.jit(jax.vmap(fresh, in_axes=(0, None)))
        self._reuse = jax.jit(jax.vmap(reuse, in_axes=(0, 0, None)))

    def fresh(self, keys: jax.Array, data: Mapping[str, Any]) -> tuple[Any, float]:
        return self.call("fresh", self._fresh, keys, dict(data))

    def reuse(self, keys: jax.Array, previous: Any, data: Mapping[str, Any]) -> tuple[Any, float]:
        return self.call("reuse", self._reuse, keys, previous, dict(data))


def seed_keys(seeds: Sequence[int], stage: int) -> jax.Array:
    """One key per seed for fit number ``stage`` of the chain (independent across stages)."""
    keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds, dtype=np.uint32))
    return jax.vmap(jax.random.fold_in, (0, None))(keys, stage)
