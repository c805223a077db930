"""SVI as one pure, compiled program per (model, method, settings): the seeds fitted one after
another (``lax.map``) in it.

Seeds are not vectorised: on CPU a vmapped fit ran no faster than the seeds in sequence (bnn
AutoBNAF 4.3 s either way, AutoNormal 0.9 against 1.1 s) while XLA took 1.3-1.5x as long to
compile it (bnn AutoBNAF 32 against 22 s, coin AutoNormal 3.1 against 2.1 s), and a cold grid is
compile-bound. In sequence, ``run_s`` (the program's time over its seeds) is a seed's own cost.

The program returns the fitted parameters, the loss trace, posterior draws of the model's latent
sites and per-particle ELBO terms for a final ELBO and PSIS. It is lowered and compiled ahead of
time, so compile time is measured apart from run time.

The per-particle ELBO terms log p(x, z) - log q(z) that scoring uses (final ELBO, PSIS k-hat,
KL) are always float64 (``float64_particle_elbos``): a float32 program's fitted parameters are
re-evaluated at fresh draws of q in a second, 64-bit program, so a diagnostic of the fit's tails
never measures the program's round-off instead (weights whose spread is a few ulps of log p, as
for a guide close to the posterior, would be round-off and nothing else). That program is scoring,
not the method: its time is in neither ``compile_s`` nor ``run_s``.

Its building blocks, ``make_svi`` (the SVI object of one guide instance) and ``svi_steps`` (the
scanned update steps), also build the perf suite's timed programs (``svi_init_and_run``), so the
grid and the regression gate time the same computation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import optax
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.optim import optax_to_numpyro

from svi_bench.benchmarks.inference import executables
from svi_bench.benchmarks.inference.settings import SVISettings


class SVIFit(NamedTuple):
    """Results of fitting one guide for several seeds (leading axis: seed)."""

    losses: np.ndarray  # (seeds, steps)
    draws: dict[str, np.ndarray]  # site -> (seeds, num_draws, *shape)
    particle_elbos: np.ndarray  # (seeds, final_elbo_particles): log p(x, z) - log q(z)
    params_finite: np.ndarray  # (seeds,) bool
    compile_s: float  # time to get the executable: trace, lower, compile, or load it
    run_s: float
    cache: str  # which cache served the program: "executable", "jax" or "" (compiled)
    host_others_share: float = math.nan  # share of the host's CPU others used during the run
    cost: dict[str, float] = {}  # program_cost.COLUMNS
    particle_elbos_precision: str = "float64"  # what particle_elbos were computed in
    #: the fitted (constrained) guide parameters, {name: (seeds, *shape)}: rows keep none of
    #: them (the grid scores draws); a study that reads a guide's parameters takes them here
    params: dict[str, Any] | None = None  # each seed's fitted parameters (leading axis: seed):
    # a pytree per name (a flow guide's are nested lists of arrays)

    @property
    def cache_hit(self) -> bool:
        """The program itself came from a cache (not a sub-computation of it)."""
        return bool(self.cache)


ONECYCLE = {"pct_start": 0.2, "pct_final": 0.8, "div_factor": 3.0, "final_div_factor": 4.0}
"""002's OneCycle schedule (``optax.linear_onecycle_schedule``) but its peak and length, which are
the settings' ``learning_rate`` and ``num_steps``."""
PLATEAU = {"factor": 0.1, "patience": 10, "accumulation_size": 100}
"""002's ``optax.contrib.reduce_on_plateau``: the mean loss of each 100 steps is one evaluation; 10
evaluations without a relative improvement of 1e-4 multiply the step by 0.1."""


def learning_rate_schedule(settings: SVISettings) -> Callable[[Any], Any]:
    """The step size as a function of the step count, before any plateau reduction."""
    if settings.optimizer == "adam":
        return optax.constant_schedule(settings.learning_rate)
    return optax.linear_onecycle_schedule(transition_steps=settings.num_steps,
                                          peak_value=settings.learning_rate, **ONECYCLE)


def make_optimizer(settings: SVISettings) -> Any:
    """The NumPyro optimiser ``settings.optimizer`` names (``settings.OPTIMIZERS``). The default,
    adam, is NumPyro's own Adam, so the programs made before optimisers were a setting are
    unchanged; the schedules are optax transformations through NumPyro's optax adapter, which
    passes each step's loss as ``value`` (what ``reduce_on_plateau`` reads)."""
    if settings.optimizer == "adam":
        return numpyro.optim.Adam(settings.learning_rate)
    adam = optax.adam(learning_rate=learning_rate_schedule(settings))
    if settings.optimizer == "onecycle":
        return optax_to_numpyro(adam)
    if settings.optimizer == "onecycle_plateau":
        return optax_to_numpyro(optax.chain(adam, optax.contrib.reduce_on_plateau(**PLATEAU)))
    raise ValueError(f"unknown optimizer {settings.optimizer!r}")


def make_svi(model: Callable[..., None], guide: Any, settings: SVISettings) -> SVI:
    """NumPyro's SVI of one guide instance: ``make_optimizer``, a ``num_particles`` ELBO."""
    return SVI(
        model,
        guide,
        make_optimizer(settings),
        Trace_ELBO(num_particles=settings.num_particles),
    )


def svi_steps(svi: SVI, state: Any, model_kwargs: Mapping[str, Any], num_steps: int) -> tuple:
    """``num_steps`` ``svi.update`` steps in one ``lax.scan``: ``(final state, loss per step)``."""

    def step(state, _):
        return svi.update(state, **model_kwargs)

    return jax.lax.scan(step, state, None, length=num_steps)


def svi_init_and_run(
    model: Callable[..., None],
    make_guide: Callable[[], Any],
    model_kwargs: Mapping[str, Any],
    settings: SVISettings,
) -> tuple[Callable[[jax.Array], Any], Callable[[Any], tuple]]:
    """The update steps alone, for timing: ``init(rng_key) -> state`` and
    ``run(state) -> (state, losses)`` (``settings.num_steps`` steps, as ``build_svi_program``
    takes them), each building its own guide instance."""

    def init(rng_key: jax.Array) -> Any:
        return make_svi(model, make_guide(), settings).init(rng_key, **model_kwargs)

    def run(state: Any) -> tuple:
        svi = make_svi(model, make_guide(), settings)
        svi.init(state.rng_key, **model_kwargs)  # sets up this guide instance; result unused
        return svi_steps(svi, state, model_kwargs, settings.num_steps)

    return init, run


def params_finite(params: Any) -> jax.Array:
    """Whether every fitted parameter is finite."""
    return jnp.all(
        jnp.array([jnp.all(jnp.isfinite(p)) for p in jax.tree_util.tree_leaves(params)])
    )


def guide_draws(model: Callable[..., None], guide: Any, params: Any, draw_key: jax.Array,
                model_kwargs: Mapping[str, Any], latent_sites: Sequence[str], num_draws: int,
                extra_sites: Sequence[str] = ()) -> dict[str, jax.Array]:
    """``num_draws`` constrained draws of the fitted guide; ``extra_sites`` (deterministic sites)
    drawn by replaying the model on them."""
    draws = Predictive(guide, params=params, num_samples=num_draws)(draw_key, **model_kwargs)
    draws = {site: draws[site] for site in latent_sites}
    if extra_sites:  # only then: the built-in models' programs stay exactly as they were
        det = Predictive(model, posterior_samples=draws, return_sites=list(extra_sites))(
            jax.random.fold_in(draw_key, 1), **model_kwargs)
        draws.update({site: det[site] for site in extra_sites})
    return draws


def build_svi_program(
    model: Callable[..., None],
    make_guide: Callable[[], Any],
    model_kwargs: Mapping[str, Any],
    latent_sites: Sequence[str],
    settings: SVISettings,
    extra_sites: Sequence[str] = (),
    with_elbos: bool = True,
) -> Callable[[jax.Array], tuple]:
    """The per-seed SVI program: ``rng_key -> (losses, draws, particle_elbos, params_finite,
    params)``. ``extra_sites`` (deterministic sites) are drawn by replaying the model on the
    guide's draws. ``with_elbos=False`` leaves the particle ELBOs out (an empty array in their
    place) for a caller that scores the fit in a program of its own (``fit_svi``'s float64 one):
    traced in, they were a third to a half of the compile of a flow guide's program."""

    def program(rng_key: jax.Array) -> tuple:
        fit_key, draw_key, elbo_key = jax.random.split(rng_key, 3)
        guide = make_guide()
        svi = make_svi(model, guide, settings)
        state = svi.init(fit_key, **model_kwargs)
        state, losses = svi_steps(svi, state, model_kwargs, settings.num_steps)
        params = svi.get_params(state)
        finite = params_finite(params)
        draws = guide_draws(model, guide, params, draw_key, model_kwargs, latent_sites,
                            settings.num_draws, extra_sites)
        elbos = (particle_elbos(model, guide, params, elbo_key, model_kwargs,
                                settings.final_elbo_particles)
                 if with_elbos else jnp.zeros((0,), losses.dtype))
        return losses, draws, elbos, finite, params

    return program


def particle_elbos(model: Callable[..., None], guide: Any, params: Any, elbo_key: jax.Array,
                   model_kwargs: Mapping[str, Any], num_particles: int) -> jax.Array:
    """log p(x, z) - log q(z) at ``num_particles`` fresh draws z of the fitted guide, each a
    one-particle ``Trace_ELBO``, in the precision of the arrays given."""
    single = Trace_ELBO(num_particles=1)
    keys = jax.random.split(elbo_key, num_particles)
    return -jax.lax.map(lambda k: single.loss(k, params, model, guide, **model_kwargs), keys,
                        batch_size=100)


def float64_particle_elbos(model: Callable[..., None], make_guide: Callable[[], Any],
                           model_kwargs: Mapping[str, Any], params: Any, rng_keys: jax.Array,
                           num_particles: int,
                           identity: Mapping[str, Any] | None = None,
                           precision: str = "float64") -> np.ndarray:
    """``particle_elbos`` of every seed's fitted ``params`` (leading axis: seed) in float64,
    whatever the precision they were fitted in: the parameters and the model's data cast to
    float64 and a fresh guide traced in 64-bit mode, from each seed's own ELBO key (the
    program's: float64 draws of it differ from the float32 ones). One program over the seeds,
    stored like the fit's (``executables``, its own ``identity``), run inside
    ``precision_scope(precision)`` so the caller's mode is restored (``precision="float32"``:
    the same program in float32, for a guide that cannot trace in 64 bits)."""
    from svi_bench.models.contract.precision_checks import cast_floats, precision_scope

    with precision_scope(precision):
        kwargs = cast_floats(model_kwargs, precision)
        dtype = np.dtype(precision)
        params64 = jax.tree_util.tree_map(
            lambda a: np.asarray(a, dtype) if np.asarray(a).dtype.kind == "f" else a, params)

        def one_seed(args: tuple) -> jax.Array:
            seed_params, key = args
            elbo_key = jax.random.split(key, 3)[2]  # the program's split: fit, draws, ELBO
            return particle_elbos(model, make_guide(), seed_params, elbo_key, kwargs,
                                  num_particles)

        program = jax.jit(lambda p, keys: jax.lax.map(one_seed, (p, keys)))
        compiled, _, _ = executables.load_or_compile_after(program, (params64, rng_keys),
                                                           identity)
        return np.asarray(compiled(params64, rng_keys))


def fit_svi(
    rng_keys: jax.Array,
    model: Callable[..., None],
    make_guide: Callable[[], Any],
    model_kwargs: Mapping[str, Any],
    latent_sites: Sequence[str],
    settings: SVISettings,
    extra_sites: Sequence[str] = (),
    program_key: Mapping[str, Any] | None = None,
) -> SVIFit:
    """Fit one guide for every key in ``rng_keys`` (shape (seeds, 2)) in one compiled program,
    the seeds in sequence.

    ``program_key``: what else defines the program (method, model source and data hashes); with
    it a warm run loads the stored executable instead of tracing (``executables``).
    """
    precision = settings.precision
    # a float32 fit's ELBOs are scored in float64 by a program of their own: not traced in twice
    one_seed = build_svi_program(model, make_guide, model_kwargs, latent_sites, settings,
                                 extra_sites, with_elbos=precision == "float64")
    program = jax.jit(lambda keys: jax.lax.map(one_seed, keys))
    run = executables.compile_and_run(
        program, rng_keys, identity=executables.identity(
            "svi", program_key, model, settings, sites=latent_sites, extra_sites=extra_sites))
    losses, draws, elbos, finite, params = run.out
    if precision != "float64":
        try:
            elbos = float64_particle_elbos(
                model, make_guide, model_kwargs, params, rng_keys, settings.final_elbo_particles,
                executables.identity("svi_float64_elbos", program_key, model, settings))
            precision = "float64"
        except Exception:  # noqa: BLE001 - a guide that cannot trace in 64 bits: its own precision
            elbos = float64_particle_elbos(
                model, make_guide, model_kwargs, params, rng_keys, settings.final_elbo_particles,
                executables.identity("svi_elbos", program_key, model, settings),
                precision=precision)
    return SVIFit(
        losses=np.asarray(losses),
        draws={k: np.asarray(v) for k, v in draws.items()},
        particle_elbos=np.asarray(elbos),
        particle_elbos_precision=precision,
        params_finite=np.asarray(finite),
        compile_s=run.compile_s,
        run_s=run.run_s,
        cache=run.cache,
        host_others_share=run.others_share,
        cost=run.cost,
        params={k: jax.tree_util.tree_map(np.asarray, v) for k, v in params.items()},
    )
