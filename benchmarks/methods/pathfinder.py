"""Pathfinder (single path) and multi-path Pathfinder from BlackJAX, as methods of family "vi".

Pathfinder (Zhang, Carpenter, Gelman and Vehtari 2022, JMLR 23(306)) runs L-BFGS on -log p from
a random initial point and, at each iterate, takes the Gaussian whose covariance is the L-BFGS
inverse-Hessian estimate (``maxcor`` pairs of history); it keeps the one with the highest ELBO
(estimated from ``num_elbo_samples`` draws) and draws from it. Multi-path Pathfinder runs
``num_paths`` such paths from independent initial points and resamples the pooled draws by their
Pareto-smoothed importance weights (PSIS, Vehtari et al. 2024).

Both run on the one bridge from the model to a flat log density (``methods.log_density``), every
seed in one compiled program (seeds in sequence, ``lax.map``).

The suite measures BlackJAX 1.7.1 as it is, with two departures from the paper: ``bfgs_sample``
centres each Gaussian at ``x + H g`` with ``g`` the gradient of L-BFGS's objective -log p (a step
away from the mode; the paper's Algorithm 4 has ``x + H grad log p``, and ``PathfinderState``
documents the field as the target's gradient), and the ELBO of the last iterate is never compared
(points from ``iterations`` on are masked). Near the mode ``H g`` is small but not nil: on
``correlated_gaussian`` it moves the chosen Gaussian of seed 0 by 0.23 posterior sd.
Multi-path's importance weights use the q each draw came from, so its resampling corrects it.

Gradient evaluations (``grad_evals``), per path, derived from the path BlackJAX returns:

* L-BFGS: ``2 + 2 * iterations``. BlackJAX 1.7.1 evaluates value and gradient at the initial
  point twice (its history, then optax's first ``value_and_grad_from_state``), and per iteration
  once per line-search trial plus once more at the accepted point (its history). BlackJAX does not
  return the number of line-search trials, so each iteration is counted with one: a lower bound,
  exact whenever the zoom line search accepts its first trial (measured with a counting log
  density on the suite's models at the quick settings: up to 23% of the L-BFGS evaluations
  uncounted, on multimodal_2d, at most 2.3% of a path's total with its ELBO draws).
  ``iterations`` is read off the returned path (``lbfgs_iterations``).
* ELBO: ``iterations * num_elbo_samples`` log-density evaluations, the path points BlackJAX
  compares (each counted as a gradient evaluation, which over-states their cost).
* Multi-path: every path's count, plus ``num_paths * num_draws`` log densities of the pool (its
  importance weights).

Not counted, as the SVI methods' final-ELBO particles are not: the log densities of the single
path's returned draws (its ``log_weights``, for the suite's k-hat, ELBO and KL) and of the path's
iterates (its ``losses``). BlackJAX's vectorised ELBO also evaluates the padded path points after
L-BFGS stopped (``maxiter + 1`` points in all): that work shows in ``run_s``, not in
``grad_evals``, so ``maxiter`` should not be far above what the models need.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.methods.base import Method, Program, RunResult, timed
from svi_bench.models import Dataset, ModelSpec

PRECISIONS = ("float32", "float64")


def _check_int(obj: Any, name: str, minimum: int = 1) -> None:
    value = getattr(obj, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_tolerance(obj: Any, name: str) -> None:
    value = getattr(obj, name)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value) \
            or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class PathfinderSettings:
    """One Pathfinder path: at most ``maxiter`` L-BFGS iterations with ``maxcor`` correction
    pairs (the history size), the ELBO of each iterate's Gaussian from ``num_elbo_samples``
    draws, then ``num_draws`` draws from the best. ``maxls``, ``ftol`` and ``gtol`` are
    BlackJAX's line-search cap and stopping tolerances."""

    num_draws: int
    maxiter: int
    maxcor: int = 5
    num_elbo_samples: int = 25
    maxls: int = 1000
    ftol: float = 1e-5
    gtol: float = 1e-8
    precision: str = "float32"


    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        for name in ("num_draws", "maxiter", "maxcor", "num_elbo_samples", "maxls"):
            _check_int(self, name)
        for name in ("ftol", "gtol"):
            _check_tolerance(self, name)


@dataclass(frozen=True)
class MultiPathfinderSettings(PathfinderSettings):
    """``num_paths`` Pathfinder paths from independent initial points; each path adds
    ``num_draws`` draws to the pool and ``num_draws`` are resampled from the pool by their PSIS
    weights (Stan's design: 4 paths, a pool of 4 x the draws kept)."""

    num_paths: int = 4


    def validate(self) -> None:
        super().validate()
        _check_int(self, "num_paths", minimum=2)


DEFAULTS = {
    # smoke: plumbing only; a short path and few draws keep the program small.
    "smoke": dict(num_draws=400, maxiter=30, num_elbo_samples=10),
    # quick/paper: Stan's defaults (history size 5, 25 ELBO draws); maxiter 200 lets every model
    # of the suite converge (at most 112 iterations, hierarchical_linreg; 100 was not enough).
    "quick": dict(num_draws=4000, maxiter=200),
    "paper": dict(num_draws=20000, maxiter=1000),
}
MULTI_DEFAULTS = {
    "smoke": {**DEFAULTS["smoke"], "num_paths": 2},
    "quick": {**DEFAULTS["quick"], "num_paths": 4},
    "paper": {**DEFAULTS["paper"], "num_paths": 4},
}


def lbfgs_iterations(elbo: np.ndarray, position: np.ndarray) -> int:
    """L-BFGS iterations one path ran, from BlackJAX's returned path (``maxiter + 1`` points).

    After L-BFGS stops, BlackJAX pads the path with its last iterate and sets the ELBO of every
    point from ``iterations`` on to -inf. So ``iterations`` is the last point that moved, or one
    past the last finite ELBO when the final iteration took a zero step (a zero gradient)."""
    pos = np.asarray(position).reshape(len(position), -1)
    moved = np.flatnonzero(np.any(pos[1:] != pos[:-1], axis=1))
    last_move = int(moved[-1]) + 1 if moved.size else 0
    finite = np.flatnonzero(np.isfinite(np.asarray(elbo)))
    considered = int(finite[-1]) + 1 if finite.size else 0
    return max(last_move, considered)


def path_grad_evals(iterations: int, num_elbo_samples: int) -> int:
    """Gradient evaluations of one path (the module's rule): L-BFGS ``2 + 2 * iterations``
    (one line-search trial per iteration), ELBO ``iterations * num_elbo_samples``."""
    return 2 + 2 * iterations + iterations * num_elbo_samples


def multipath_grad_evals(iterations: list[int], settings: MultiPathfinderSettings) -> int:
    """Every path's ``path_grad_evals`` plus the pool's log densities (importance weights)."""
    paths = sum(path_grad_evals(i, settings.num_elbo_samples) for i in iterations)
    return paths + settings.num_paths * settings.num_draws


def _identity(name: str, program_key: Mapping[str, Any] | None, spec: ModelSpec, settings: Any,
              sites: tuple[str, ...]) -> dict[str, str] | None:
    from svi_bench.benchmarks.inference import executables

    return executables.identity(name, program_key, spec.model, settings, sites=sites)


def _lbfgs_options(settings: PathfinderSettings) -> dict[str, Any]:
    return dict(maxiter=settings.maxiter, maxcor=settings.maxcor, maxls=settings.maxls,
                gtol=settings.gtol, ftol=settings.ftol)


def _all_finite(tree: Any) -> Any:
    import jax
    import jax.numpy as jnp

    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def build_pathfinder(spec: ModelSpec, data: Dataset, settings: PathfinderSettings,
                     latent_info: LatentInfo,
                     program_key: Mapping[str, Any] | None = None) -> Program:
    """One path per seed, every seed in one compiled program. ``log_weights`` are
    ``log p - log q`` of the returned draws (q the chosen Gaussian, so PSIS k-hat applies);
    ``losses`` are -log p at the path's iterates (L-BFGS's objective, flat after it stopped)."""
    sites = latent_info.sites + tuple(spec.extra_sites)

    def one_seed(rng_key: Any) -> tuple:
        import blackjax
        import jax
        import jax.numpy as jnp

        from svi_bench.benchmarks.methods.log_density import constrain_draws, log_density

        init_key, fit_key, draw_key = jax.random.split(rng_key, 3)
        bridge = log_density(init_key, spec.model, data.model_kwargs, sites)
        state, info = blackjax.vi.pathfinder.approximate(
            fit_key, bridge.logdensity_fn, bridge.initial_position, settings.num_elbo_samples,
            **_lbfgs_options(settings))
        xs, log_q = blackjax.vi.pathfinder.sample(draw_key, state, settings.num_draws)
        # one vmapped log density (one copy of the model in the program) for both
        log_p = jax.vmap(bridge.logdensity_fn)(jnp.concatenate([xs, info.path.position]))
        n = settings.num_draws
        return (constrain_draws(bridge, xs), log_p[:n] - log_q, -log_p[n:], info.path.elbo,
                info.path.position, _all_finite(state))

    def program(rng_keys: Any) -> RunResult:
        import jax

        out, timing = timed(jax.jit(lambda keys: jax.lax.map(one_seed, keys)), rng_keys,
                            identity=_identity("pathfinder", program_key, spec, settings, sites))
        draws, log_weights, objective, elbo, position, finite = out
        iterations = np.array([lbfgs_iterations(e, p) for e, p in zip(elbo, position, strict=True)])
        grads = np.array([float(path_grad_evals(int(i), settings.num_elbo_samples))
                          for i in iterations])
        return RunResult(
            draws={k: np.asarray(v)[:, None] for k, v in draws.items()},  # one chain
            grad_evals=grads, compile_s=timing.compile_s, run_s=timing.run_s,
            cache=timing.cache, host_others_share=timing.host_others_share, cost=timing.cost,
            losses=np.asarray(objective), log_weights=np.asarray(log_weights),
            params_finite=np.asarray(finite),
            columns={"num_draws": settings.num_draws},
            seed_columns={"num_steps": iterations},
        )

    return program


def build_multipathfinder(spec: ModelSpec, data: Dataset, settings: MultiPathfinderSettings,
                          latent_info: LatentInfo,
                          program_key: Mapping[str, Any] | None = None) -> Program:
    """``num_paths`` paths per seed, each from its own NumPyro initial point, then
    ``num_paths * num_draws`` pooled draws resampled to ``num_draws`` (with replacement) by
    ``blackjax.multipathfinder``'s PSIS weights, whose k-hat is the per-seed column
    ``pathfinder_khat`` (NaN where BlackJAX's Pareto fit fails: near-constant weights, an
    approximation that is all but exact). No ``log_weights``: resampled draws have no density q
    to weigh them by (``psis=False``), and the paths' own ``log p - log q`` would make the
    suite's ELBO and KL those of the paths, not of what is returned.

    The paths run one after another (``lax.map`` of ``pathfinder.approximate``), not through
    ``multipathfinder``'s ``init``: that drops each path's iterates (the iteration count),
    draws its pool with the ELBO's sample size, and vmaps L-BFGS, so every path runs all
    ``maxiter`` iterations (``lax.cond`` under ``vmap`` is a select)."""
    sites = latent_info.sites + tuple(spec.extra_sites)

    def one_seed(rng_key: Any) -> tuple:
        import blackjax
        import jax
        from blackjax.vi.multipathfinder import MultipathfinderState, psis_weights

        from svi_bench.benchmarks.methods.log_density import constrain_draws, log_density

        init_key, start_key, fit_key, pool_key, resample_key = jax.random.split(rng_key, 5)
        bridge = log_density(init_key, spec.model, data.model_kwargs, sites)
        starts = jax.vmap(lambda k: log_density(k, spec.model, data.model_kwargs, sites)
                          .initial_position)(jax.random.split(start_key, settings.num_paths))

        def one_path(args: tuple) -> tuple:
            key, start = args
            state, info = blackjax.vi.pathfinder.approximate(
                key, bridge.logdensity_fn, start, settings.num_elbo_samples,
                **_lbfgs_options(settings))
            return state, info.path.elbo, info.path.position

        states, elbo, position = jax.lax.map(
            one_path, (jax.random.split(fit_key, settings.num_paths), starts))
        pool, log_q = jax.vmap(lambda k, s: blackjax.vi.pathfinder.sample(k, s, settings.num_draws))(
            jax.random.split(pool_key, settings.num_paths), states)
        log_p = jax.vmap(jax.vmap(bridge.logdensity_fn))(pool)
        state = MultipathfinderState(path_states=states, samples=pool, logp=log_p, logq=log_q)
        _, khat = psis_weights(state)
        xs = blackjax.multipathfinder(bridge.logdensity_fn).sample(resample_key, state,
                                                                   settings.num_draws)
        finite = _all_finite((states.position, states.alpha, states.beta, states.gamma))
        return constrain_draws(bridge, xs), khat, elbo, position, finite

    def program(rng_keys: Any) -> RunResult:
        import jax

        out, timing = timed(jax.jit(lambda keys: jax.lax.map(one_seed, keys)), rng_keys,
                            identity=_identity("multipathfinder", program_key, spec, settings,
                                               sites))
        draws, khat, elbo, position, finite = out
        iterations = [[lbfgs_iterations(e, p) for e, p in zip(es, ps, strict=True)]
                      for es, ps in zip(elbo, position, strict=True)]
        grads = np.array([float(multipath_grad_evals(its, settings)) for its in iterations])
        return RunResult(
            draws={k: np.asarray(v)[:, None] for k, v in draws.items()},  # one chain
            grad_evals=grads, compile_s=timing.compile_s, run_s=timing.run_s,
            cache=timing.cache, host_others_share=timing.host_others_share, cost=timing.cost,
            params_finite=np.asarray(finite),
            columns={"num_draws": settings.num_draws},
            seed_columns={"pathfinder_khat": np.asarray(khat, dtype=float),
                          "num_steps": np.array([sum(its) for its in iterations])},
        )

    return program


PATHFINDER = Method(
    name="pathfinder",
    family="vi",
    description=("Pathfinder (Zhang, Carpenter, Gelman and Vehtari 2022, JMLR 23(306)): L-BFGS "
                 "on the log density from a random start; of the Gaussians given by the L-BFGS "
                 "inverse-Hessian estimates along the path, the one with the highest ELBO. "
                 "BlackJAX's blackjax.vi.pathfinder, one path."),
    settings_type=PathfinderSettings,
    defaults=DEFAULTS,
    build=build_pathfinder,
    order=300,
    budget="maxiter",
)

MULTIPATHFINDER = Method(
    name="multipathfinder",
    family="vi",
    description=("Multi-path Pathfinder (Zhang, Carpenter, Gelman and Vehtari 2022, JMLR "
                 "23(306)): several Pathfinder paths from independent starts, their pooled draws "
                 "importance-resampled by Pareto-smoothed weights (blackjax.multipathfinder); "
                 "its own PSIS k-hat is the column pathfinder_khat."),
    settings_type=MultiPathfinderSettings,
    defaults=MULTI_DEFAULTS,
    build=build_multipathfinder,
    psis=False,  # resampled draws: no density q of their own for log p - log q
    order=301,
    budget="maxiter",
)

METHODS = [PATHFINDER, MULTIPATHFINDER]
