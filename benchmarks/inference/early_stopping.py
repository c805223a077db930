"""SVI with early stopping as one compiled program: chunks of scanned steps in a ``lax.while_loop``,
a validation loss after each chunk, and a stopping rule read inside the program.

002 ("Tips & Tricks") stops when the per-point validation loss exceeds the per-point training loss
for ``patience`` consecutive evaluations (``document``); the conventional rule stops when the
validation loss has not improved on its best for ``patience`` evaluations (``conventional``);
``none`` never stops. The rule and the patience are arguments of the compiled program, not
constants of it, so one executable per optimiser serves every rule. Under ``vmap`` over seeds the
loop runs until every seed has stopped; a stopped seed's state is frozen (the batched while loop
selects the old carry), so each seed's ``steps_run`` and parameters are its own.

Deviation from the document, which evaluates after every step: here the evaluation is after
every ``eval_every`` steps, comparing the validation loss of the chunk's final parameters with the
chunk's mean training loss (the mean of ``eval_every`` one-step losses, less noisy than one).
Both losses are the run's own ELBO loss (``num_particles`` particles) divided by the number of
points of their split, as the document normalises them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import Predictive, Trace_ELBO
from optax.contrib import ReduceLROnPlateauState

from svi_bench.benchmarks.inference import host_lock, jax_setup
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.inference.svi import make_svi, svi_steps

RULES: dict[str, str] = {
    "none": "never stops: every step of the budget",
    "document": "002: stop when the per-point validation loss exceeds the per-point training "
                "loss for `patience` consecutive evaluations",
    "conventional": "stop when the validation loss has not improved on its best for `patience` "
                    "evaluations",
}
"""The stopping rules by name; their codes in the program are their positions here."""
RULE_CODES = {name: i for i, name in enumerate(RULES)}


class StopState(NamedTuple):
    """The rule's memory: evaluations in a row that counted against the run, the best validation
    loss so far, and whether the run has stopped."""

    count: jax.Array
    best: jax.Array
    stopped: jax.Array


def initial_stop_state() -> StopState:
    return StopState(jnp.asarray(0, jnp.int32), jnp.asarray(jnp.inf, jnp.float32),
                     jnp.asarray(False))


def stop_update(rule: jax.Array, patience: jax.Array, state: StopState, train_pp: jax.Array,
                val_pp: jax.Array) -> StopState:
    """One evaluation of rule number ``rule`` (``RULE_CODES``): traceable, so the rule may be a
    runtime argument of a compiled program. A non-finite validation loss counts against the run."""
    val_pp = jnp.asarray(val_pp, jnp.float32)
    worse = ~(val_pp <= jnp.asarray(train_pp, jnp.float32))  # NaN counts against the run
    improved = val_pp < state.best
    count = jnp.where(rule == RULE_CODES["document"], jnp.where(worse, state.count + 1, 0),
                      jnp.where(improved, 0, state.count + 1)).astype(jnp.int32)
    count = jnp.where(rule == RULE_CODES["none"], 0, count)
    best = jnp.where(improved, val_pp, state.best)
    stopped = state.stopped | ((rule != RULE_CODES["none"]) & (count >= patience))
    return StopState(count, best, stopped)


def stopping_point(rule: str, patience: int, train_pp: Sequence[float],
                   val_pp: Sequence[float]) -> int | None:
    """The number of evaluations after which ``rule`` stops on these loss traces (None: never):
    the program's own rule run over given traces, for checking it on synthetic losses."""
    code, pat = jnp.asarray(RULE_CODES[rule]), jnp.asarray(patience)

    def step(state, pair):
        new = stop_update(code, pat, state, *pair)
        return new, new.stopped

    _, stopped = jax.lax.scan(step, initial_stop_state(),
                              (jnp.asarray(train_pp, jnp.float32), jnp.asarray(val_pp, jnp.float32)))
    hits = np.flatnonzero(np.asarray(stopped))
    return int(hits[0]) + 1 if len(hits) else None


class EarlyStopRun(NamedTuple):
    """One run of the compiled program over several seeds (leading axis: seed)."""

    losses: np.ndarray  # (seeds, num_steps): NaN after the stop
    train_pp: np.ndarray  # (seeds, evaluations): per-point training loss; NaN after the stop
    val_pp: np.ndarray  # (seeds, evaluations): per-point validation loss; NaN after the stop
    steps_run: np.ndarray  # (seeds,)
    stopped: np.ndarray  # (seeds,) bool: the rule stopped the run before its budget
    draws: dict[str, np.ndarray]  # site -> (seeds, num_draws, *shape)
    params_finite: np.ndarray  # (seeds,) bool
    plateau_scale: np.ndarray  # (seeds,): reduce_on_plateau's final step multiplier (1: none)
    run_s: float


def plateau_scale(optim_state: Any) -> jax.Array:
    """The step multiplier of a ``reduce_on_plateau`` in an optimiser's state; 1 without one."""
    found = [leaf for leaf in jax.tree_util.tree_leaves(
        optim_state, is_leaf=lambda x: isinstance(x, ReduceLROnPlateauState))
        if isinstance(leaf, ReduceLROnPlateauState)]
    return jnp.asarray(found[0].scale, jnp.float32) if found else jnp.float32(1.0)


def build_program(model: Callable[..., None], make_guide: Callable[[], Any],
                  train_kwargs: Mapping[str, Any], val_kwargs: Mapping[str, Any],
                  latent_sites: Sequence[str], settings: SVISettings, eval_every: int,
                  n_train: int, n_val: int) -> Callable[..., tuple]:
    """The per-seed program ``(rng_key, rule, patience) -> outputs of EarlyStopRun``: at most
    ``settings.num_steps`` steps in chunks of ``eval_every`` (which must divide it)."""
    if settings.num_steps % eval_every:
        raise ValueError(f"eval_every {eval_every} must divide num_steps {settings.num_steps}")
    n_evals = settings.num_steps // eval_every

    def program(rng_key: jax.Array, rule: jax.Array, patience: jax.Array) -> tuple:
        fit_key, draw_key, val_key = jax.random.split(rng_key, 3)
        guide = make_guide()
        svi = make_svi(model, guide, settings)
        val_loss = Trace_ELBO(num_particles=settings.num_particles)
        state = svi.init(fit_key, **train_kwargs)
        nan = jnp.float32(jnp.nan)
        carry = (state, jnp.asarray(0, jnp.int32), initial_stop_state(),
                 jnp.full(settings.num_steps, nan), jnp.full(n_evals, nan), jnp.full(n_evals, nan))

        def going(carry):
            _, i, stop, *_ = carry
            return (i < n_evals) & ~stop.stopped

        def chunk(carry):
            state, i, stop, losses, train, val = carry
            state, step_losses = svi_steps(svi, state, train_kwargs, eval_every)
            train_pp = jnp.mean(step_losses) / n_train
            val_pp = val_loss.loss(jax.random.fold_in(val_key, i), svi.get_params(state), model,
                                   guide, **val_kwargs) / n_val
            stop = stop_update(rule, patience, stop, train_pp, val_pp)
            losses = jax.lax.dynamic_update_slice(losses, step_losses.astype(losses.dtype),
                                                  (i * eval_every,))
            return (state, i + 1, stop, losses, train.at[i].set(train_pp),
                    val.at[i].set(val_pp.astype(val.dtype)))

        state, i, stop, losses, train, val = jax.lax.while_loop(going, chunk, carry)
        params = svi.get_params(state)
        finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(p))
                                    for p in jax.tree_util.tree_leaves(params)]))
        draws = Predictive(guide, params=params, num_samples=settings.num_draws)(
            draw_key, **train_kwargs)
        draws = {site: draws[site] for site in latent_sites}
        return (losses, train, val, i * eval_every, stop.stopped, draws, finite,
                plateau_scale(state.optim_state))

    return program


class EarlyStopPrograms:
    """One optimiser's program compiled once for a batch of seeds, run once per rule."""

    def __init__(self, model: Callable[..., None], make_guide: Callable[[], Any],
                 train_kwargs: Mapping[str, Any], val_kwargs: Mapping[str, Any],
                 latent_sites: Sequence[str], settings: SVISettings, eval_every: int,
                 n_train: int, n_val: int, rng_keys: jax.Array):
        program = build_program(model, make_guide, train_kwargs, val_kwargs, latent_sites,
                                settings, eval_every, n_train, n_val)
        self.rng_keys = rng_keys
        batched = jax.jit(jax.vmap(program, in_axes=(0, None, None)))
        self.compiled, self.compile_s, self.cache = jax_setup.compile_timed(
            batched, rng_keys, jnp.asarray(0, jnp.int32), jnp.asarray(1, jnp.int32))

    def run(self, rule: str, patience: int) -> EarlyStopRun:
        """Every seed under ``rule`` with ``patience`` evaluations; run time measured alone."""
        args = (self.rng_keys, jnp.asarray(RULE_CODES[rule], jnp.int32),
                jnp.asarray(patience, jnp.int32))
        with host_lock.timed_section():
            start = time.perf_counter()
            out = jax.block_until_ready(self.compiled(*args))
            run_s = time.perf_counter() - start
        losses, train, val, steps, stopped, draws, finite, scale = jax.device_get(out)
        return EarlyStopRun(np.asarray(losses), np.asarray(train), np.asarray(val),
                            np.asarray(steps), np.asarray(stopped),
                            {k: np.asarray(v) for k, v in draws.items()}, np.asarray(finite),
                            np.asarray(scale), run_s)
