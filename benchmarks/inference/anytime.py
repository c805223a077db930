"""Anytime programs: one compiled SVI fit that draws from its guide at checkpoints, and one NUTS
run whose first n kept draws are scored for n doubling.

SVI: the steps run as a python-unrolled sequence of ``lax.scan`` chunks whose lengths double, so
the checkpoints fall at step ``2^k``; after each chunk the guide is drawn from with that
checkpoint's key, inside the same ``jax.jit`` program. The chunks apply the same ``svi.update``
sequence as one scan over all steps, so the last checkpoint equals an ordinary fit
(``ordinary_fit``) of the same steps and key. NUTS: warm-up then sampling in one program that
records every iteration's position and leapfrog steps; prefixes are taken on the host.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from numpyro.infer import Predictive

from svi_bench.benchmarks.inference import host_lock, jax_setup
from svi_bench.benchmarks.inference.nuts import make_nuts, nuts_step
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.svi import make_svi, svi_steps


def checkpoints(first_exp: int, last_exp: int) -> list[int]:
    """The doubling schedule ``2^first_exp, ..., 2^last_exp`` (steps or draws)."""
    if not 0 <= first_exp <= last_exp:
        raise ValueError(f"checkpoints: need 0 <= first <= last, got {first_exp}, {last_exp}")
    return [2 ** k for k in range(first_exp, last_exp + 1)]


def chunk_lengths(points: Sequence[int]) -> list[int]:
    """Lengths of the scans between consecutive checkpoints (the first from step 0)."""
    return [b - a for a, b in zip([0, *points[:-1]], points, strict=True)]


def _timed(program, *args) -> tuple[Any, float, float]:
    """``(host outputs, compile seconds, run seconds)``."""
    compiled, compile_s, _ = jax_setup.compile_timed(program, *args)
    with host_lock.timed_section():
        start = time.perf_counter()
        out = jax.block_until_ready(compiled(*args))
        run_s = time.perf_counter() - start
    return jax.tree_util.tree_map(np.asarray, out), compile_s, run_s


def _draw(guide, params, key, data, num_draws, sites):
    draws = Predictive(guide, params=params, num_samples=num_draws)(key, **data)
    return {s: draws[s] for s in sites}


def svi_checkpoint_program(model: Callable[..., None], make_guide: Callable[[], Any],
                           settings: SVISettings, points: Sequence[int],
                           sites: Sequence[str], data: Mapping[str, Any]) -> Callable:
    """``program(key) -> (losses (steps,), [draws per checkpoint])``. The data are closed over,
    as in the grid's programs: models may take plain ints that fix shapes (``n_groups``)."""
    lengths = chunk_lengths(points)
    data = dict(data)

    def program(key):
        fit_key, draw_key = jax.random.split(key)
        guide = make_guide()
        svi = make_svi(model, guide, settings)
        state = svi.init(fit_key, **data)
        losses, draws = [], []
        for length in lengths:
            state, chunk = svi_steps(svi, state, data, length)
            losses.append(chunk)
            draws.append(_draw(guide, svi.get_params(state), draw_key, data,
                               settings.num_draws, sites))
        return jax.numpy.concatenate(losses), draws

    return jax.jit(program)


def ordinary_fit(model: Callable[..., None], make_guide: Callable[[], Any], settings: SVISettings,
                 num_steps: int, sites: Sequence[str], key, data) -> dict[str, np.ndarray]:
    """One scan of ``num_steps`` then draws with the same keys: what the last checkpoint equals."""
    fit_key, draw_key = jax.random.split(key)
    guide = make_guide()
    svi = make_svi(model, guide, settings)
    state, _ = svi_steps(svi, svi.init(fit_key, **data), data, num_steps)
    out = _draw(guide, svi.get_params(state), draw_key, data, settings.num_draws, sites)
    return {k: np.asarray(v) for k, v in out.items()}


def run_svi(model, make_guide, settings: SVISettings, points: Sequence[int],
            sites: Sequence[str], key, data: Mapping[str, Any]) -> tuple[Any, float, float]:
    """``((losses, draws per checkpoint), compile_s, run_s)`` of the checkpoint program."""
    program = svi_checkpoint_program(model, make_guide, settings, points, sites, data)
    return _timed(program, key)


def run_nuts(model, settings: NUTSSettings, sites: Sequence[str], key,
             data: Mapping[str, Any]) -> tuple[Any, float, float]:
    """``((draws {site: (samples, ...)}, leapfrog steps per iteration (warm-up + samples)),
    compile_s, run_s)`` of one chain; the data are closed over (``svi_checkpoint_program``)."""
    data = dict(data)

    def program(key):
        kernel = make_nuts(model, settings)
        state = kernel.init(key, settings.num_warmup, model_args=(), model_kwargs=data)
        step = nuts_step(kernel, data, lambda s: (s.z, s.num_steps))
        state, (_, warm_steps) = jax.lax.scan(step, state, None, length=settings.num_warmup)
        state, (z, steps) = jax.lax.scan(step, state, None, length=settings.num_samples)
        constrained = jax.vmap(kernel.postprocess_fn((), data))(z)
        return {s: constrained[s] for s in sites}, jax.numpy.concatenate([warm_steps, steps])

    return _timed(jax.jit(program), key)
