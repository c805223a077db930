"""What the perf suite measures: the selection of (model, method) cases and the compiled programs.

SVI: ``init(key) -> state`` and ``run(state) -> (state, losses)``, a ``lax.scan`` of
``SVI_STEPS[model]`` ``svi.update`` steps, both lowered and compiled ahead of time; only ``run``
is timed. NUTS: the kernel is initialised once for ``NUTS_CHAINS`` chains and warmed up by a
compiled program; the timed program takes the warmed-up state (with a fresh key each round) and
runs ``NUTS_DRAWS[model]`` sample steps. Settings come from the ``smoke`` profile (learning
rate, particles, warm-up, tree depth), so a PR that changes them changes the deterministic
figures. Every other method (BlackJAX's Pathfinder and MCLMC, FlowJAX's flow, a user's): its
own cell program (``Method.build``) at the smoke profile for one seed, timed whole, compile
excluded (``executables.keep_in_process``: the executable got in the first round is reused).

The programs are built from the grid's own building blocks (``benchmarks.inference.svi`` and
``nuts``), compiled or loaded as the grid's are (``executables.load_or_compile``: a warm run
loads the stored executables instead of tracing), and gradient
evaluations are counted by its rule (``numpyro_guides.inner_steps``): a change to how the grid fits is
a change to what the suite times.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from svi_bench.benchmarks.grid.profiles import settings_for
from svi_bench.benchmarks.inference import executables, program_cost
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.inference.nuts import make_nuts, nuts_init, nuts_step
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.svi import svi_init_and_run
from svi_bench.benchmarks.methods import nuts, registry
from svi_bench.benchmarks.methods.numpyro_guides import guide_factory, inner_steps, is_numpyro_guide
from svi_bench.benchmarks.regress.thresholds import COMPILES, STRICT_FIGURES
from svi_bench.benchmarks.scoring.references import source_hash
from svi_bench.models import REGISTRY, ModelSpec

PROFILE = "smoke"
"""Settings (learning rate, particles, warm-up, tree depth) of the timed programs."""
ACCURACY_PROFILE = "quick"
"""Profile of the accuracy cells: converged enough that the exact-family guides sit near the
noise floor (smoke-profile guides are still far from it, so drift there says less)."""
# Steps (draws) per timed round, per model: about 10-70 ms a round on one core, long enough that
# timer and dispatch overhead (~0.1 ms) do not matter, short enough for a suite of minutes.
SVI_STEPS = {"coin": 2000, "gamma_concentration": 2000, "dirichlet_categorical": 2000,
             "correlated_gaussian": 2000, "multimodal_2d": 1000, "linreg_outliers": 400,
             "hierarchical_linreg": 400, "hierarchical_linreg_nc": 400, "bnn": 400,
             "funnel": 2000}
NUTS_DRAWS = {"coin": 1000, "correlated_gaussian": 1000, "dirichlet_categorical": 1000,
              "gamma_concentration": 500, "multimodal_2d": 500, "linreg_outliers": 300,
              "hierarchical_linreg": 200, "hierarchical_linreg_nc": 200, "bnn": 100,
              "funnel": 500}
NUTS_CHAINS = 2
ROUNDS = 6
"""Timed rounds per benchmark and pass; each round gets a fresh key (round r: seed ``1000 + r``,
the same in every pass, so every pass times the same work)."""
PASSES = 5
"""Each timed case runs once per pass, passes one after the other (pass 1 of every case, then
pass 2, ...), so a case's rounds are spread over the whole run instead of one burst of a few
hundred milliseconds: on a shared machine slow phases last seconds, and the minimum over passes
finds a quiet one. Compiled programs are reused between passes."""
FIGURE_SEED = 0
"""Seed of the untimed first call whose deterministic figures (grad evals, final loss) are kept."""


@dataclass(frozen=True)
class Case:
    model: str
    method: str

    @property
    def id(self) -> str:
        return f"{self.model}-{self.method}"

    @classmethod
    def parse(cls, text: str) -> Case:
        """``"model/method"`` (the form the tests are parametrised with) as a Case."""
        model, _, method = text.partition("/")
        return cls(model, method)

    def __str__(self) -> str:
        return f"{self.model}/{self.method}"


def _cases(pairs: str) -> tuple[Case, ...]:
    return tuple(Case.parse(p) for p in pairs.split())


# The default selection: every model at least once, every method at least once (each manual
# guide too), all cheap. SVI step cost: 13 cases.
DEFAULT_SVI = _cases(
    "coin/manual:beta coin/manual:normal coin/autonormal gamma_concentration/manual:lognormal "
    "dirichlet_categorical/autodiagonalnormal correlated_gaussian/automvn "
    "multimodal_2d/manual:rotated_mixture multimodal_2d/autoiaf linreg_outliers/manual:independent "
    "hierarchical_linreg/autodais hierarchical_linreg/autobnaf bnn/autonormal funnel/autonormal"
)
DEFAULT_NUTS = _cases("coin/nuts correlated_gaussian/nuts hierarchical_linreg/nuts "
                      "hierarchical_linreg_nc/nuts")
# Accuracy against the exact references (coin, correlated_gaussian, dirichlet_categorical): an
# exact-family guide (near the noise floor), a mean-field guide on a correlated target (far above
# it, so a drift either way shows), and NUTS.
DEFAULT_ACCURACY = _cases(
    "coin/manual:beta correlated_gaussian/automvn correlated_gaussian/autodiagonalnormal "
    "dirichlet_categorical/autonormal coin/nuts"
)
# Every method with a program of its own (neither a NumPyro guide's svi.update steps nor NUTS's
# draws): each of BlackJAX's and FlowJAX's methods once, on models where its round takes 5-70 ms.
DEFAULT_METHODS = _cases(
    "hierarchical_linreg/pathfinder correlated_gaussian/multipathfinder "
    "hierarchical_linreg/mclmc correlated_gaussian/mams correlated_gaussian/flow:rqs "
    "correlated_gaussian/nuts:dense"
)
EXACT_REFERENCE_MODELS = ("coin", "correlated_gaussian", "dirichlet_categorical")


def _cases_where(keep: Callable[[str], bool]) -> tuple[Case, ...]:
    """Every (model, method) of the registry whose method ``keep`` selects."""
    return tuple(Case(name, m) for name, spec in REGISTRY.items()
                 for m in registry.methods_for(spec) if keep(m))


def svi_cases(full: bool) -> tuple[Case, ...]:
    return _cases_where(is_numpyro_guide) if full else DEFAULT_SVI


def nuts_cases(full: bool) -> tuple[Case, ...]:
    return tuple(Case(name, nuts.NAME) for name in REGISTRY) if full else DEFAULT_NUTS


def has_own_program(method: str) -> bool:
    """Whether a method is timed through its whole cell program (``method_program``), not by the
    NumPyro programs the SVI and NUTS benchmarks time step by step."""
    return not is_numpyro_guide(method) and not registry.resolve(method).baseline


def method_cases(full: bool) -> tuple[Case, ...]:
    return _cases_where(has_own_program) if full else DEFAULT_METHODS


def time_rounds(benchmark: Any, group: str, series: str, figures: dict, perf_pass: int,
                rounds: int, run: Callable[[Any], Any], fresh_input: Callable[[int], Any]) -> None:
    """Time ``run(fresh_input(seed))`` for ``rounds`` rounds (round r: seed ``1000 + r``, the
    same in every pass; the input is made untimed) and record the case's figures."""
    seeds = iter(range(1000, 1000 + rounds))
    benchmark.group = group
    benchmark.extra_info.update(figures, series=series, perf_pass=perf_pass)
    benchmark.pedantic(run, setup=lambda: ((fresh_input(next(seeds)),), {}), rounds=rounds,
                       iterations=1)


def accuracy_cases(full: bool) -> tuple[Case, ...]:
    if not full:
        return DEFAULT_ACCURACY
    return tuple(
        Case(name, m) for name in EXACT_REFERENCE_MODELS
        for m in registry.methods_for(REGISTRY[name])
    )


def skip_reason(case: Case) -> tuple[ModelSpec, Any, str | None]:
    """(spec, dataset, why the method cannot run on the model or None)."""
    spec = REGISTRY[case.model]
    ds = spec.make_data()
    info = latent_info(spec.model, ds.model_kwargs)
    return spec, ds, registry.resolve(case.method).applicable(spec, info)


@functools.cache
def _programs_source() -> str:
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()


def program_identity(spec: ModelSpec, model_kwargs: Any, role: str, settings: Any,
                     length: int) -> dict[str, str]:
    """What defines one of the suite's programs (with what ``executables`` adds: shapes, versions,
    flags, the suite's inference source): a warm run loads the stored executable, as the grid
    does, instead of tracing again."""
    return {"use": "perf", "role": role, "model": spec.name, "model_fn": spec.model.__qualname__,
            "settings": repr(settings), "length": str(length), "source_hash": source_hash(spec),
            "data_hash": executables.kwargs_hash(model_kwargs), "programs": _programs_source()}


def cost_figures(cost: Mapping[str, float]) -> dict[str, float]:
    """The gated figures (``thresholds.STRICT_FIGURES``) among a program's ``program_cost``."""
    return {k: float(v) for k, v in cost.items() if k in STRICT_FIGURES}


def static_figures(compiled: Any) -> dict[str, float]:
    """The gated static cost figures of a compiled (or loaded) executable."""
    return cost_figures(program_cost.static_cost(compiled))


def _compile(fn: Callable, identity: dict[str, str], *args: Any) -> executables.Got:
    """Compiled ``fn``, seconds to get it, the cache that served it ("executable", "jax" or "")
    and the host's load meanwhile."""
    return executables.load_or_compile_measured(jax.jit(fn), args, identity)


def compile_figures(got: Mapping[str, executables.Got]) -> dict[str, Any]:
    """The ``extra_info`` figures (``thresholds.COMPILES``) of the programs a case got, by their
    label ("" the timed program, "init", "warm-up"): seconds, cache, the host's load."""
    out: dict[str, Any] = {}
    for label, seconds, cache, load in COMPILES:
        if label in got:
            g = got[label]
            out.update({seconds: float(g.compile_s), cache: g.cache,
                        load: float(g.others_share)})
    return out


@dataclass
class SVIProgram:
    init: Any
    run: Any
    settings: SVISettings
    grad_evals: int
    compiles: dict[str, executables.Got]  # "" (the timed program) and "init"

    @property
    def cache_hit(self) -> bool:
        """Both programs came from a cache."""
        return all(g.cache for g in self.compiles.values())

    def fresh_state(self, seed: int) -> Any:
        return jax.block_until_ready(self.init(jax.random.PRNGKey(seed)))


_PROGRAMS: dict[tuple, Any] = {}


def cached(key: tuple, build: Callable[[], Any]) -> Any:
    """One compiled program per key and process: later passes reuse the first pass's."""
    if key not in _PROGRAMS:
        _PROGRAMS[key] = build()
    return _PROGRAMS[key]


def svi_program(spec: ModelSpec, method: str, model_kwargs: Any, steps: int | None = None
                ) -> SVIProgram:
    """The compiled init and ``steps``-step programs of one (model, method)."""
    steps = steps or SVI_STEPS[spec.name]
    settings = dataclasses.replace(settings_for(PROFILE, spec.name, method), num_steps=steps)
    make_guide = guide_factory(spec, method, settings.guide_options)
    init, run = svi_init_and_run(spec.model, make_guide, model_kwargs, settings)
    key = jax.random.PRNGKey(FIGURE_SEED)
    ident = functools.partial(program_identity, spec, model_kwargs, settings=settings, length=steps)
    got_init = _compile(init, ident(role=f"svi-init:{method}"), key)
    got_run = _compile(run, ident(role=f"svi-run:{method}"), got_init.compiled(key))
    grad_evals = steps * settings.num_particles * inner_steps(method, settings.guide_options)
    return SVIProgram(got_init.compiled, got_run.compiled, settings, grad_evals,
                      {"": got_run, "init": got_init})


@dataclass
class NUTSProgram:
    run: Any
    warm_state: Any
    settings: NUTSSettings
    grad_evals_warmup: int
    draws: int
    compiles: dict[str, executables.Got]  # "" (the timed program) and "warm-up"

    @property
    def cache_hit(self) -> bool:
        """Both programs came from a cache."""
        return all(g.cache for g in self.compiles.values())

    def fresh_state(self, seed: int) -> Any:
        keys = jax.random.split(jax.random.PRNGKey(seed), NUTS_CHAINS)
        return self.warm_state._replace(rng_key=keys)


def nuts_program(spec: ModelSpec, model_kwargs: Any, draws: int | None = None,
                 chains: int = NUTS_CHAINS) -> NUTSProgram:
    """Initialise ``chains`` chains (seed ``FIGURE_SEED``), warm them up with a compiled program
    and compile the ``draws``-step sampling program that the benchmark times."""
    draws = draws or NUTS_DRAWS[spec.name]
    settings = settings_for(PROFILE, spec.name, nuts.NAME)
    kernel = make_nuts(spec.model, settings)
    keys = jax.random.split(jax.random.PRNGKey(FIGURE_SEED), chains)
    state = nuts_init(kernel, keys, settings, dict(model_kwargs))

    step = nuts_step(kernel, model_kwargs, lambda s: (s.num_steps, s.diverging, s.accept_prob))

    def steps(n: int) -> Callable:
        def program(state: Any) -> tuple[Any, tuple]:
            return jax.lax.scan(step, state, None, length=n)

        return program

    got_warm = _compile(
        steps(settings.num_warmup),
        program_identity(spec, model_kwargs, "nuts-warmup", settings, settings.num_warmup), state)
    warm_state, (warm_steps, _, _) = jax.block_until_ready(got_warm.compiled(state))
    got_run = _compile(
        steps(draws), program_identity(spec, model_kwargs, "nuts-draws", settings, draws),
        warm_state)
    return NUTSProgram(got_run.compiled, warm_state, settings, int(np.sum(warm_steps)), draws,
                       {"": got_run, "warm-up": got_warm})


def finite_tree(tree: Any) -> bool:
    return bool(all(jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)
                    if jnp.issubdtype(jnp.asarray(x).dtype, jnp.floating)))


@dataclass
class MethodProgram:
    """A method's cell program for one seed, and its untimed first call (seed ``FIGURE_SEED``)."""

    program: Callable[[Any], Any]
    settings: Any
    first: Any  # the RunResult of the first call, which got (compiled or loaded) the executable

    @property
    def compiles(self) -> dict[str, executables.Got]:
        """The first call's getting of its executable (its load from the program's ``cost``)."""
        share = self.first.cost.get(program_cost.COMPILE_LOAD, math.nan)
        return {"": executables.Got(None, self.first.compile_s, self.first.cache, share)}

    @staticmethod
    def keys(seed: int) -> Any:
        return jax.random.PRNGKey(seed)[None]  # one seed: shape (1, 2)


def method_program(spec: ModelSpec, method: str, model_kwargs: Any, dataset: Any) -> MethodProgram:
    """Build ``method``'s program on ``spec`` at the smoke profile and call it once: later calls in
    this process reuse its executable (``executables.keep_in_process``), so a round times its run."""
    executables.keep_in_process()
    declared = registry.resolve(method)
    settings = dataclasses.replace(declared.settings(PROFILE, spec.name), precision=spec.precision)
    info = latent_info(spec.model, model_kwargs)
    program = declared.build(spec, dataset, settings, info, program_key=program_identity(
        spec, model_kwargs, f"method:{method}:{declared.source_hash()}", settings, 1))
    return MethodProgram(program, settings, program(MethodProgram.keys(FIGURE_SEED)))
