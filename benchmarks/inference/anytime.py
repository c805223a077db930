"""The anytime SVI program: one compiled fit that draws from its guide at checkpoints.

The steps run as a python-unrolled sequence of ``lax.scan`` chunks whose lengths double, so the
checkpoints fall at step ``2^k``; after each chunk the guide is drawn from with that checkpoint's
key, inside the same ``jax.jit`` program. The chunks apply the same ``svi.update`` sequence as one
scan over all steps, so the last checkpoint equals an ordinary fit (``ordinary_fit``) of the same
steps and key. (A sampler's checkpoints need no program of their own: they are the prefixes of
one ordinary run, ``methods.base.chain_prefixes``.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

from svi_bench.benchmarks.inference import executables
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.inference.svi import guide_draws, make_svi, params_finite, svi_steps


def checkpoints(first_exp: int, last_exp: int) -> list[int]:
    """The doubling schedule ``2^first_exp, ..., 2^last_exp`` (steps or draws)."""
    if not 0 <= first_exp <= last_exp:
        raise ValueError(f"checkpoints: need 0 <= first <= last, got {first_exp}, {last_exp}")
    return [2 ** k for k in range(first_exp, last_exp + 1)]


def chunk_lengths(points: Sequence[int]) -> list[int]:
    """Lengths of the scans between consecutive checkpoints (the first from step 0)."""
    return [b - a for a, b in zip([0, *points[:-1]], points, strict=True)]


def svi_checkpoint_program(model: Callable[..., None], make_guide: Callable[[], Any],
                           model_kwargs: Mapping[str, Any], latent_sites: Sequence[str],
                           settings: SVISettings, points: Sequence[int],
                           extra_sites: Sequence[str] = ()) -> Callable:
    """The per-seed program ``key -> (losses (steps,), [draws], [params finite])``, one entry
    per checkpoint. The data are closed over, as in the grid's programs: models may take plain
    ints that fix shapes (``n_groups``)."""
    lengths = chunk_lengths(points)
    data = dict(model_kwargs)

    def program(key):
        fit_key, draw_key = jax.random.split(key)
        guide = make_guide()
        svi = make_svi(model, guide, settings)
        state = svi.init(fit_key, **data)
        losses, draws, finite = [], [], []
        for length in lengths:
            state, chunk = svi_steps(svi, state, data, length)
            losses.append(chunk)
            params = svi.get_params(state)
            draws.append(guide_draws(model, guide, params, draw_key, data, latent_sites,
                                     settings.num_draws, extra_sites))
            finite.append(params_finite(params))
        return jax.numpy.concatenate(losses), draws, finite

    return program


def ordinary_fit(model: Callable[..., None], make_guide: Callable[[], Any], settings: SVISettings,
                 num_steps: int, sites: Sequence[str], key, data) -> dict[str, np.ndarray]:
    """One scan of ``num_steps`` then draws with the same keys: what the last checkpoint equals."""
    fit_key, draw_key = jax.random.split(key)
    guide = make_guide()
    svi = make_svi(model, guide, settings)
    state, _ = svi_steps(svi, svi.init(fit_key, **data), data, num_steps)
    out = guide_draws(model, guide, svi.get_params(state), draw_key, data, sites,
                      settings.num_draws)
    return {k: np.asarray(v) for k, v in out.items()}


class CheckpointFit(NamedTuple):
    """Every seed's fit (leading axis: seed) with its draws at each checkpoint."""

    losses: np.ndarray  # (seeds, steps)
    draws: list[dict[str, np.ndarray]]  # per checkpoint: {site: (seeds, draws, *shape)}
    params_finite: list[np.ndarray]  # per checkpoint: (seeds,)
    compile_s: float
    run_s: float
    cache: str
    host_others_share: float
    cost: dict[str, float]  # program_cost.COLUMNS


def fit_svi_checkpoints(rng_keys: jax.Array, model: Callable[..., None],
                        make_guide: Callable[[], Any], model_kwargs: Mapping[str, Any],
                        latent_sites: Sequence[str], settings: SVISettings,
                        points: Sequence[int], extra_sites: Sequence[str] = (),
                        program_key: Mapping[str, Any] | None = None) -> CheckpointFit:
    """Fit one guide for every key in ``rng_keys`` (shape (seeds, 2)) in one compiled program,
    the seeds in sequence, drawing at every checkpoint of ``points`` (steps)."""
    one_seed = svi_checkpoint_program(model, make_guide, model_kwargs, latent_sites, settings,
                                      points, extra_sites)
    program = jax.jit(lambda keys: jax.lax.map(one_seed, keys))
    run = executables.compile_and_run(
        program, rng_keys, identity=executables.identity(
            "svi-checkpoints", program_key, model, settings, sites=latent_sites,
            extra_sites=extra_sites, points=list(points)))
    losses, draws, finite = jax.tree.map(np.asarray, run.out)
    return CheckpointFit(losses, list(draws), list(finite), run.compile_s, run.run_s, run.cache,
                         run.others_share, run.cost)
