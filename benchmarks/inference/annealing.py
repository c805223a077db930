"""Annealed live SVI (000, "Live variational inference") as two compiled programs.

The document changes a model argument (the Dirichlet concentration ``alpha_scale``) between
batches of ``SVI.update`` steps and, at every value, repeats 100-step jitted batches until the
loss changes by less than 2% over a batch. Here ``alpha_scale`` is a *traced* argument, so one
executable of ``stage`` serves every stage of the schedule (and the direct fit, which is the same
program with a tolerance no batch can meet and a batch budget); ``init`` is the other one. Each
stage is one call of the compiled ``stage`` program from the host, which lets the caller show the
stage, alpha and loss between calls (the document's live plot); a single program over all stages
could not report until it ended, and ``jax.debug.callback`` would put host I/O inside timed code.
Seeds run together under ``vmap``: a batched ``while_loop`` keeps each seed's own stopping rule.

The traced argument need not be the concentration: ``argument`` names it (``live_data``: the
observations seen so far, ``n_obs``), or a stage gets a mapping of several (``locked_mode``: the
tempering ``beta`` and the weight of the well that locks the start mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import Predictive, Trace_ELBO

from svi_bench.benchmarks.inference import host_lock, jax_setup
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.inference.svi import make_svi

RULE_TOLERANCE = 0.02
"""The document's rule: a stage ends when |loss - loss_before| / |loss_before| < 2% over a batch."""
BATCH_STEPS = 100
"""``SVI.update`` steps per jitted batch (the document's ``fori_loop(0, 100, ...)``)."""
NEVER = -1.0
"""A tolerance no relative change meets: the direct fit runs exactly its batch budget."""


def relative_change(before: jax.Array, after: jax.Array) -> jax.Array:
    """The document's convergence measure |after - before| / |before| (NaN if either is)."""
    return jnp.abs(after - before) / jnp.abs(before)


class StageEnd(NamedTuple):
    """How one stage ended (per seed under vmap)."""

    batches: jax.Array  # batches run
    converged: jax.Array  # the rule ended the stage (False: the batch cap did, or NaN losses)
    loss_before: jax.Array  # the document's ``init_loss`` of the last batch (svi.evaluate)
    loss: jax.Array  # the last step's loss of the last batch (the document's plotted loss)
    batch_loss_mean: jax.Array  # mean of the last batch's finite step losses (NaN: none)
    nonfinite_losses: jax.Array  # non-finite step losses over the whole stage


def until_converged(evaluate: Callable[[Any], jax.Array],
                    run_batch: Callable[[Any], tuple[Any, jax.Array]],
                    state: Any, tolerance: jax.Array, max_batches: jax.Array) -> tuple[Any, StageEnd]:
    """The document's stage loop as a ``lax.while_loop``: ``loss_before = evaluate(state)``, one
    batch ``run_batch(state) -> (state, step losses)``, stop when the relative change of the last
    step's loss from ``loss_before`` is below ``tolerance``, after ``max_batches`` batches, or
    after a batch whose every loss is non-finite (a diverged fit: more batches cannot help)."""
    nan = jnp.asarray(jnp.nan, jnp.result_type(float))

    def cond(carry):
        _, end = carry
        diverged = (end.batches > 0) & ~jnp.isfinite(end.batch_loss_mean)
        return (end.batches < max_batches) & ~end.converged & ~diverged

    def body(carry):
        state, end = carry
        before = evaluate(state)
        state, losses = run_batch(state)
        finite = jnp.isfinite(losses)
        last = losses[-1]
        mean = jnp.where(jnp.any(finite), jnp.sum(jnp.where(finite, losses, 0.0))
                         / jnp.maximum(jnp.sum(finite), 1), jnp.nan)
        return state, StageEnd(end.batches + 1, relative_change(before, last) < tolerance,
                               before, last, mean,
                               end.nonfinite_losses + jnp.sum(~finite))

    start = StageEnd(jnp.asarray(0), jnp.asarray(False), nan, nan, nan, jnp.asarray(0))
    return jax.lax.while_loop(cond, body, (state, start))


class StageOutput(NamedTuple):
    """Host results of one stage for every seed (leading axis: seed)."""

    end: StageEnd
    draws: Any  # (seeds, num_draws, *latent shape) of the one latent site (a dict: of several)
    particle_elbos: np.ndarray  # (seeds, elbo_particles): log p - log q at fresh draws of q
    params_finite: np.ndarray  # (seeds,) bool
    run_s: float  # the stage's call, all seeds, up to block_until_ready


class AnnealingPrograms:
    """The compiled ``init(keys, value)`` and ``stage(state, value, tol, max_batches, keys)`` of one
    guide (vmapped over seeds), each compiled once (``compile_s``) and reused for every stage.
    ``value`` is the traced model argument ``argument`` (a number) or a mapping of several;
    ``site`` the latent site whose draws a stage returns (a tuple: a dict of those sites). The
    values and the tolerance are passed in ``settings.precision``; the caller runs every call in
    that precision (``precision_scope``)."""

    def __init__(self, model: Callable[..., None], make_guide: Callable[[], Any],
                 settings: SVISettings, site: str | tuple[str, ...], batch_steps: int = BATCH_STEPS,
                 elbo_particles: int = 200, argument: str = "alpha_scale"):
        self.compile_s = 0.0
        self.cache = ""  # "jax" when JAX's persistent cache served every compile, else ""
        self.argument = argument
        self._compiled: dict[str, Any] = {}
        self._hits: list[bool] = []
        self._float = jnp.dtype(settings.precision)

        def init(key, kwargs):
            return make_svi(model, make_guide(), settings).init(key, **kwargs)

        def stage(state, kwargs, tolerance, max_batches, key):
            guide = make_guide()
            svi = make_svi(model, guide, settings)
            svi.init(state.rng_key, **kwargs)  # sets up this guide instance only

            def run_batch(s):
                return jax.lax.scan(lambda c, _: svi.update(c, **kwargs), s, None,
                                    length=batch_steps)

            state, end = until_converged(lambda s: svi.evaluate(s, **kwargs), run_batch,
                                         state, tolerance, max_batches)
            params = svi.get_params(state)
            finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(p))
                                        for p in jax.tree_util.tree_leaves(params)]))
            draw_key, elbo_key = jax.random.split(key)
            drawn = Predictive(guide, params=params, num_samples=settings.num_draws)(
                draw_key, **kwargs)
            draws = drawn[site] if isinstance(site, str) else {s: drawn[s] for s in site}
            single = Trace_ELBO(num_particles=1)
            losses = jax.lax.map(
                lambda k: single.loss(k, params, model, guide, **kwargs),
                jax.random.split(elbo_key, elbo_particles), batch_size=50)
            return state, end, draws, -losses, finite

        self._init = jax.jit(jax.vmap(init, in_axes=(0, None)))
        self._stage = jax.jit(jax.vmap(stage, in_axes=(0, None, None, 0, 0)))

    def _kwargs(self, value: float | Mapping[str, float]) -> dict[str, jax.Array]:
        """The traced model arguments of a stage (scalars of the settings' precision: one program
        serves all)."""
        named = value if isinstance(value, Mapping) else {self.argument: value}
        return {k: jnp.asarray(v, self._float) for k, v in named.items()}

    def _call(self, name: str, program, *args) -> tuple[Any, float]:
        if name not in self._compiled:
            compiled, seconds, cache = jax_setup.compile_timed(program, *args)
            self._compiled[name] = compiled
            self.compile_s += seconds
            self._hits.append(cache == jax_setup.JAX_CACHE)
            self.cache = jax_setup.JAX_CACHE if all(self._hits) else ""
        with host_lock.timed_section():
            start = time.perf_counter()
            out = jax.block_until_ready(self._compiled[name](*args))
            return out, time.perf_counter() - start

    def init(self, keys: jax.Array, value: float | Mapping[str, float]) -> tuple[Any, float]:
        """Fresh SVI states of every seed at ``value``; (state, run seconds)."""
        return self._call("init", self._init, keys, self._kwargs(value))

    def stage(self, state: Any, value: float | Mapping[str, float], tolerance: float,
              max_batches: np.ndarray, keys: jax.Array) -> tuple[Any, StageOutput]:
        """One stage (or the direct fit) for every seed from ``state``; (new state, output)."""
        args = (state, self._kwargs(value), jnp.asarray(tolerance, self._float),
                jnp.asarray(max_batches, jnp.int32), keys)
        (state, end, draws, elbo, finite), seconds = self._call("stage", self._stage, *args)
        host = jax.device_get((end, draws, elbo, finite))
        end = StageEnd(*(np.asarray(v) for v in host[0]))
        drawn = (np.asarray(host[1]) if not isinstance(host[1], dict)
                 else {k: np.asarray(v) for k, v in host[1].items()})
        return state, StageOutput(end, drawn, np.asarray(host[2]), np.asarray(host[3]), seconds)


def stage_settings(learning_rate: float, num_draws: int, **more: Any) -> SVISettings:
    """The SVI settings of a staged program's batches: ``BATCH_STEPS`` steps a batch, one
    particle, ``num_draws`` draws scored per stage (``more``: any other setting)."""
    return SVISettings(num_steps=BATCH_STEPS, num_particles=1, learning_rate=learning_rate,
                       num_draws=num_draws, **more)


def schedule(n_stages: int, final: float = 0.02) -> np.ndarray:
    """The document's geometric schedule ``final ** (i / n)``, with the exponent reaching 1 at the
    last stage (i / (n - 1)) so that the last stage is exactly the direct fit's ``final``; the
    document's own last stage is ``0.02 ** 0.99`` = 0.0208. One stage: ``final`` alone."""
    if n_stages < 1:
        raise ValueError(f"n_stages must be >= 1, got {n_stages}")
    if n_stages == 1:
        return np.array([final])
    return final ** (np.arange(n_stages) / (n_stages - 1))
