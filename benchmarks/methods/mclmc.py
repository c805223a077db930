"""Microcanonical Langevin Monte Carlo from BlackJAX, unadjusted (MCLMC) and Metropolis-adjusted
with a random trajectory length (MAMS), as methods of family "mcmc".

MCLMC (Robnik, De Luca, Silverstein and Seljak 2023, JMLR 24(311)) integrates isokinetic
(energy-sampling) dynamics with partial momentum refreshment and no accept/reject step; its step
size, momentum decoherence length L and diagonal preconditioner are tuned by
``blackjax.mclmc_find_L_and_step_size``. MAMS (Robnik, Cohn-Gordon and Seljak 2025,
arXiv:2503.01707) proposes with the same dynamics over a random number of steps and accepts by
Metropolis-Hastings; it is tuned by ``blackjax.adjusted_mclmc_find_L_and_step_size`` (dual
averaging to ``target_accept``, trajectory length ``target_num_integration_steps`` steps on
average, as BlackJAX 1.7.1 pins it).

Chains and seeds run one after another in one compiled program (``lax.map``), as NUTS does; every
chain has its own initial point (NumPyro's, through ``methods.log_density``) and its own tuning.

Gradient evaluations (``grad_evals``), per seed, summed over chains: one at the initial point,
then ``stages`` per integrator step, tuning included, where ``stages`` is the integrator's number
of position updates (McLachlan 2, velocity Verlet 1; ``integrator_stages``). MCLMC takes one
integrator step per transition: ``mclmc_tuning_steps(num_warmup)`` in tuning (from BlackJAX's
own rounding; ``mclmc_find_L_and_step_size``'s returned count uses ``n // 3`` where its
preconditioner stage runs ``round(n / 3)`` steps) and ``num_samples * thinning`` after. MAMS takes
a random number of steps per transition: the tuning's count is BlackJAX's returned total, the
sampling's the sum of ``num_integration_steps`` of every transition.

Sampler statistics: MAMS has a real divergence (an energy error above 1000 on a proposal, which
Metropolis-Hastings rejects; a kept draw is diverging when any of its ``thinning`` transitions
was) and its integrator steps per draw; MCLMC has neither accept/reject nor divergences (BlackJAX
silently reverts a step that produced NaN), so only its steps. Neither reports ``energy``: the
isokinetic dynamics conserves no Hamiltonian whose marginal E-BFMI would diagnose.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.methods.base import (
    Method,
    Program,
    RunResult,
    needs_latent_dim,
    timed,
)
from svi_bench.models import Dataset, ModelSpec

PRECISIONS = ("float32", "float64")
INTEGRATORS = ("mclachlan", "velocity_verlet", "yoshida", "omelyan")
"""BlackJAX's isokinetic integrators by name (``isokinetic_<name>``)."""
MCLMC_TUNE_FRACTIONS = (0.3, 0.3, 0.3)
"""``frac_tune1..3`` of ``mclmc_find_L_and_step_size`` with ``num_steps=num_warmup``: BlackJAX's
default proportions (0.1 each of the run) scaled so that the three stages plus the
preconditioner's extra third of stage 2 fill the warm-up."""
MAMS_TUNE_FRACTIONS = (1 / 3, 1 / 3)
"""``frac_tune1``, ``frac_tune2`` of ``adjusted_mclmc_find_L_and_step_size`` with
``num_steps=num_warmup``: BlackJAX's equal default proportions scaled so that its two
dual-averaging passes and the variance estimate between them fill the warm-up."""


def _check_int(obj: Any, name: str, minimum: int = 1) -> None:
    value = getattr(obj, name)
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _check_number(obj: Any, name: str, low: float, high: float = math.inf,
                  closed_low: bool = False) -> None:
    value = getattr(obj, name)
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) \
        and (value >= low if closed_low else value > low) and value < high
    if not ok:
        bound = f"{'>=' if closed_low else '>'} {low}" + (f" and < {high}" if high < math.inf
                                                          else "")
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")


@dataclass(frozen=True)
class _ChainSettings:
    """``num_chains`` chains of ``num_warmup`` tuning transitions then ``num_samples`` draws,
    each draw ``thinning`` transitions after the last."""

    num_warmup: int
    num_samples: int
    num_chains: int
    thinning: int = 1
    integrator: str = "mclachlan"
    precision: str = "float32"

    def validate(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, "
                             f"got {self.precision!r}")
        for name in ("num_samples", "num_chains", "thinning"):
            _check_int(self, name)
        _check_int(self, "num_warmup", minimum=10)  # fewer leaves a tuning stage empty
        if self.integrator not in INTEGRATORS:
            raise ValueError(f"integrator must be one of {', '.join(INTEGRATORS)}, "
                             f"got {self.integrator!r}")


@dataclass(frozen=True)
class MCLMCSettings(_ChainSettings):
    """Unadjusted MCLMC: the step size is tuned so that the energy error's variance per
    dimension is ``desired_energy_var`` (BlackJAX's default 5e-4)."""

    desired_energy_var: float = 5e-4


    def validate(self) -> None:
        super().validate()
        _check_number(self, "desired_energy_var", 0.0)


@dataclass(frozen=True)
class MAMSSettings(_ChainSettings):
    """MAMS: the step size tuned by dual averaging to acceptance ``target_accept`` (0.9 by
    default, the high target MAMS is run with in BlackJAX's examples), trajectories
    ``target_num_integration_steps`` steps long on average (BlackJAX 1.7.1's default, 2)."""

    target_accept: float = 0.9
    target_num_integration_steps: float = 2.0


    def validate(self) -> None:
        super().validate()
        _check_number(self, "target_accept", 0.0, 1.0)
        # below 1.1 BlackJAX's step-size clamp drives the step to zero (its docstring)
        _check_number(self, "target_num_integration_steps", 1.1, closed_low=True)


DEFAULTS = {
    # smoke: plumbing only (few transitions; a short program compiles fast).
    "smoke": dict(num_warmup=100, num_samples=150, num_chains=2),
    # quick: NUTS's 4 chains x (500 + 1000) and 4000 draws; thinning gives about the gradient
    # evaluations NUTS spends on the quick grid's small models (3-4 x 10^4 per seed).
    "quick": dict(num_warmup=500, num_samples=1000, num_chains=4, thinning=4),
    "paper": dict(num_warmup=2000, num_samples=20000, num_chains=1, thinning=4),
}
MAMS_DEFAULTS = {
    "smoke": dict(num_warmup=100, num_samples=150, num_chains=2),
    "quick": dict(num_warmup=500, num_samples=1000, num_chains=4, thinning=2),
    "paper": dict(num_warmup=2000, num_samples=20000, num_chains=1, thinning=2),
}


def integrator_stages(name: str) -> int:
    """Gradient evaluations per integrator step: the position updates of the palindromic scheme
    (its first force is the previous step's last)."""
    from blackjax.mcmc import integrators

    coefficients = getattr(integrators, f"{name}_coefficients")
    return (len(coefficients) - 1) // 2


def _integrator(name: str) -> Any:
    from blackjax.mcmc import integrators

    return getattr(integrators, f"isokinetic_{name}")


def mclmc_tuning_steps(num_warmup: int) -> int:
    """Integrator steps ``mclmc_find_L_and_step_size`` takes (diagonal preconditioning on), with
    its own rounding: stage 1 and 2 ``round(f * n)``, the preconditioner ``round(stage2 / 3)``
    more when stage 2 has more than one step, stage 3 ``round(f * n)`` when at least 2."""
    f1, f2, f3 = MCLMC_TUNE_FRACTIONS
    n1, n2, n3 = round(num_warmup * f1), round(num_warmup * f2), round(num_warmup * f3)
    extra = round(n2 / 3) if n2 > 1 else 0
    return n1 + n2 + extra + (n3 if n3 >= 2 else 0)


def mclmc_grad_evals(settings: MCLMCSettings) -> int:
    """Gradient evaluations of one MCLMC chain: the initial point, then ``stages`` per step."""
    steps = mclmc_tuning_steps(settings.num_warmup) + settings.num_samples * settings.thinning
    return 1 + integrator_stages(settings.integrator) * steps


def mclmc_chain(rng_key: Any, logdensity_fn: Any, initial_position: Any,
                settings: MCLMCSettings) -> tuple:
    """One tuned MCLMC chain on a flat log density: ``(positions (num_samples, D), L,
    step_size)``. Traced inside the caller's program."""
    import blackjax
    import jax

    init_key, tune_key, run_key = jax.random.split(rng_key, 3)
    integrator = _integrator(settings.integrator)
    state = blackjax.mcmc.mclmc.init(initial_position, logdensity_fn, init_key)
    state, params, _ = blackjax.mclmc_find_L_and_step_size(
        mclmc_kernel=blackjax.mcmc.mclmc.build_kernel(integrator=integrator),
        num_steps=settings.num_warmup, state=state, rng_key=tune_key,
        logdensity_fn=logdensity_fn, frac_tune1=MCLMC_TUNE_FRACTIONS[0],
        frac_tune2=MCLMC_TUNE_FRACTIONS[1], frac_tune3=MCLMC_TUNE_FRACTIONS[2],
        desired_energy_var=settings.desired_energy_var, diagonal_preconditioning=True)
    sampler = blackjax.mclmc(logdensity_fn, L=params.L, step_size=params.step_size,
                             integrator=integrator,
                             inverse_mass_matrix=params.inverse_mass_matrix)

    def draw(state: Any, key: Any) -> tuple:
        state, _ = jax.lax.scan(lambda s, k: sampler.step(k, s), state,
                                jax.random.split(key, settings.thinning))
        return state, state.position

    _, positions = jax.lax.scan(draw, state, jax.random.split(run_key, settings.num_samples))
    return positions, params.L, params.step_size


def mams_chain(rng_key: Any, logdensity_fn: Any, initial_position: Any,
               settings: MAMSSettings) -> tuple:
    """One tuned MAMS chain on a flat log density: ``(positions, diverging, integrator steps
    per draw, acceptance rate per draw, tuning integrator steps, step_size, L)``."""
    import blackjax
    import jax
    import jax.numpy as jnp
    from blackjax.mcmc import adjusted_mclmc_dynamic as mams

    init_key, tune_key, run_key = jax.random.split(rng_key, 3)
    integrator = _integrator(settings.integrator)
    steps_fn = mams.make_random_trajectory_length_fn(True)
    state = mams.init(initial_position, logdensity_fn, init_key)
    state, params, tuning_steps = blackjax.adjusted_mclmc_find_L_and_step_size(
        mclmc_kernel=mams.build_kernel(integration_steps_fn=steps_fn, integrator=integrator),
        logdensity_fn=logdensity_fn, num_steps=settings.num_warmup, state=state,
        rng_key=tune_key, target=settings.target_accept, frac_tune1=MAMS_TUNE_FRACTIONS[0],
        frac_tune2=MAMS_TUNE_FRACTIONS[1], frac_tune3=0.0, diagonal_preconditioning=True,
        target_num_integration_steps=settings.target_num_integration_steps)
    sampler = blackjax.adjusted_mclmc_dynamic(
        logdensity_fn, step_size=params.step_size,
        inverse_mass_matrix=params.inverse_mass_matrix, integrator=integrator,
        integration_steps_fn=steps_fn,
        integration_steps_params=(params.L / params.step_size,))

    def transition(state: Any, key: Any) -> tuple:
        state, info = sampler.step(key, state)
        return state, (info.is_divergent, info.num_integration_steps, info.acceptance_rate)

    def draw(state: Any, key: Any) -> tuple:
        state, (div, steps, accept) = jax.lax.scan(transition, state,
                                                   jax.random.split(key, settings.thinning))
        return state, (state.position, jnp.any(div), jnp.sum(steps), jnp.mean(accept))

    _, (positions, diverging, steps, accept) = jax.lax.scan(
        draw, state, jax.random.split(run_key, settings.num_samples))
    return (positions, diverging, steps, accept, jnp.asarray(tuning_steps), params.step_size,
            params.L)


needs_two_dimensions = needs_latent_dim(
    2, "MCLMC and MAMS need a latent dimension of at least 2 (this model has {dim}): BlackJAX's "
       "isokinetic momentum update divides by d - 1 and blackjax.mcmc.mclmc.init refuses d = 1")
"""The isokinetic dynamics needs a latent dimension of at least 2."""


def _chains_program(name: str, spec: ModelSpec, data: Dataset, settings: Any,
                    latent_info: LatentInfo, program_key: Mapping[str, Any] | None,
                    chain_fn: Any) -> Any:
    """``run(rng_keys) -> (host outputs (seeds, chains, ...), Timing)``: every chain of every
    seed in sequence in one compiled program, each with its own bridge key (initial point)."""
    import jax

    from svi_bench.benchmarks.inference import executables

    sites = latent_info.sites + tuple(spec.extra_sites)

    def one_chain(rng_key: Any) -> tuple:
        from svi_bench.benchmarks.methods.log_density import constrain_draws, log_density

        init_key, chain_key = jax.random.split(rng_key)
        bridge = log_density(init_key, spec.model, data.model_kwargs, sites)
        positions, *rest = chain_fn(chain_key, bridge.logdensity_fn, bridge.initial_position,
                                    settings)
        return (constrain_draws(bridge, positions), *rest)

    def program(keys: Any) -> Any:  # keys (seeds, chains, 2): one chain after another
        flat = jax.lax.map(one_chain, keys.reshape(-1, *keys.shape[2:]))
        return jax.tree.map(lambda x: x.reshape(*keys.shape[:2], *x.shape[1:]), flat)

    def run(rng_keys: Any) -> Any:
        chain_keys = jax.vmap(lambda k: jax.random.split(k, settings.num_chains))(rng_keys)
        return timed(jax.jit(program), chain_keys, identity=executables.identity(
            name, program_key, spec.model, settings, sites=sites))

    return run


def _chains_result(draws: Mapping[str, Any], timing: Any, settings: Any, grad_evals: Any,
                   sample_stats: dict[str, Any]) -> RunResult:
    """The RunResult of a chains program: what differs between the samplers is their gradient
    count and which sample statistics they honestly have."""
    return RunResult(
        draws={k: np.asarray(v) for k, v in draws.items()}, grad_evals=grad_evals,
        compile_s=timing.compile_s, run_s=timing.run_s, cache=timing.cache,
        host_others_share=timing.host_others_share, cost=timing.cost, sample_stats=sample_stats,
        columns={"num_draws": settings.num_chains * settings.num_samples},
    )


def build_mclmc(spec: ModelSpec, data: Dataset, settings: MCLMCSettings,
                latent_info: LatentInfo,
                program_key: Mapping[str, Any] | None = None) -> Program:
    """``num_chains`` tuned MCLMC chains per seed (``mclmc_chain``), all in one program."""
    run = _chains_program("mclmc", spec, data, settings, latent_info, program_key, mclmc_chain)

    def program(rng_keys: Any) -> RunResult:
        (draws, _, _), timing = run(rng_keys)
        seeds, chains = len(rng_keys), settings.num_chains
        tuning = mclmc_tuning_steps(settings.num_warmup)
        return _chains_result(
            draws, timing, settings, np.full(seeds, float(chains * mclmc_grad_evals(settings))),
            {"num_steps": np.full((seeds, chains, settings.num_samples), settings.thinning),
             "num_steps_warmup": np.ones((seeds, chains, tuning), dtype=int)})

    return program


def build_mams(spec: ModelSpec, data: Dataset, settings: MAMSSettings,
               latent_info: LatentInfo,
               program_key: Mapping[str, Any] | None = None) -> Program:
    """``num_chains`` tuned MAMS chains per seed (``mams_chain``), all in one program."""
    run = _chains_program("mams", spec, data, settings, latent_info, program_key, mams_chain)

    def program(rng_keys: Any) -> RunResult:
        (draws, diverging, steps, _, tuning_steps, _, _), timing = run(rng_keys)
        stages = integrator_stages(settings.integrator)
        chains = settings.num_chains
        # per seed: the chains' initial gradients, then stages per integrator step
        steps_per_seed = np.asarray(tuning_steps).sum(1) + np.asarray(steps).sum((1, 2))
        return _chains_result(
            draws, timing, settings, (chains + stages * steps_per_seed).astype(float),
            {"diverging": np.asarray(diverging), "num_steps": np.asarray(steps)})

    return program


MCLMC = Method(
    name="mclmc",
    family="mcmc",
    description=("Unadjusted Microcanonical Langevin Monte Carlo (Robnik, De Luca, Silverstein "
                 "and Seljak 2023, JMLR 24(311)): isokinetic dynamics with partial momentum "
                 "refreshment and no Metropolis step, step size, L and a diagonal preconditioner "
                 "tuned by BlackJAX's mclmc_find_L_and_step_size."),
    settings_type=MCLMCSettings,
    defaults=DEFAULTS,
    build=build_mclmc,
    applicable=needs_two_dimensions,
    order=310,
    budget="num_samples",
)

MAMS = Method(
    name="mams",
    family="mcmc",
    description=("Metropolis-adjusted microcanonical sampler with random trajectory length "
                 "(Robnik, Cohn-Gordon and Seljak 2025, arXiv:2503.01707): isokinetic proposals "
                 "accepted by Metropolis-Hastings, tuned by BlackJAX's "
                 "adjusted_mclmc_find_L_and_step_size (blackjax.adjusted_mclmc_dynamic)."),
    settings_type=MAMSSettings,
    defaults=MAMS_DEFAULTS,
    build=build_mams,
    applicable=needs_two_dimensions,
    order=311,
    budget="num_samples",
)

METHODS = [MCLMC, MAMS]
