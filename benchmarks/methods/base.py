"""The Method protocol: what every inference method declares, and the one result every method's
program returns.

A method is a declaration, like a model's ``ModelSpec``: its name, family, description with
citation, settings type with per-profile defaults as data, ``applicable`` (a reason it cannot run
on a model, or None) and ``build``, which turns (model, data, settings, latent space) into a
``Program``. A program takes ``rng_keys`` (one key per seed, shape (seeds, 2)) first, runs every
seed of a cell in one compiled program (compile timed apart from run: ``timed``), and returns a
``RunResult``. The grid, the scoring and the report ask the result what it has (a loss trace,
sampler statistics, log weights), never which method made it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.models import Dataset, ModelSpec
from svi_bench.models.names import name_problem

PROFILES = ("smoke", "quick", "paper")
"""The grid's profiles; every method declares its settings' defaults for each."""
FAMILIES = {
    "mcmc": "Markov chain Monte Carlo: draws come in chains with sampler statistics",
    "vi": "variational inference and other approximations that fit a distribution and draw from it",
}
"""The method families the report groups by; a method of another family is shown as declared."""
SETTINGS_OF: dict[str, str] = {"hierarchical_linreg_nc": "hierarchical_linreg"}
"""A model that runs with another model's per-model settings (every method's overrides): a
reparameterisation of the same posterior, compared with it at equal settings."""


class RunResult(NamedTuple):
    """What one cell's program returns, for every seed (leading axis: seed).

    ``draws`` are constrained, ``(seeds, chains, draws, *site shape)`` for every latent site and
    every extra site of the model (a method without chains has one). The optional fields are what
    the family has: ``losses`` (seeds, steps) for a fitted method (the plateau rule, final loss),
    or one trace per seed when seeds stop after different numbers of steps (early stopping);
    ``log_weights`` (seeds, particles), ``log p(x, z) - log q(z)`` at fresh draws of q (the final
    ELBO, PSIS k-hat, the exact KL); ``sample_stats`` for a sampler, ``energy``, ``diverging``,
    ``num_steps`` (seeds, chains, draws) and ``num_steps_warmup`` (seeds, chains, warm-up) (R-hat,
    ESS, divergences, E-BFMI); ``params_finite`` (seeds,) for a method with parameters.
    ``columns`` are per-cell constants that go on every row (``num_draws``, ``num_steps``, ...);
    ``seed_columns`` per-seed values (seeds,) of further columns a family reports (each declared
    in ``benchmarks/scoring/columns.py``, like every column). ``cost``: the program's
    ``inference.program_cost`` figures (XLA's static cost, the run's peak memory), per program.
    A sampler without divergences or energies (an unadjusted one) leaves them out of
    ``sample_stats``: its rows then have no divergence count or E-BFMI, not a made-up zero.
    """

    draws: dict[str, np.ndarray]
    grad_evals: np.ndarray  # (seeds,): gradient evaluations of the log density per seed
    compile_s: float  # time to get the executable: trace, lower, compile, or load it
    run_s: float  # the compiled program over all seeds, to block_until_ready
    cache: str = ""  # which cache served the program: "executable", "jax" or "" (compiled)
    host_others_share: float = math.nan  # share of the host's CPU others used during the run
    losses: np.ndarray | Sequence[np.ndarray] | None = None
    log_weights: np.ndarray | None = None
    sample_stats: dict[str, np.ndarray] | None = None
    params_finite: np.ndarray | None = None
    columns: Mapping[str, Any] = {}
    seed_columns: Mapping[str, Any] = {}
    cost: Mapping[str, float] = {}

    @property
    def cache_hit(self) -> bool:
        """The program itself came from a cache (not a sub-computation of it)."""
        return bool(self.cache)


Program = Callable[[Any], RunResult]
"""``program(rng_keys) -> RunResult``: every seed of one cell, compile apart from run."""


class MethodSettings(Protocol):
    """A method's settings: a frozen dataclass with a ``precision`` field and ``validate()``."""

    precision: str

    def validate(self) -> None: ...


class Builder(Protocol):
    def __call__(self, spec: ModelSpec, data: Dataset, settings: Any, latent_info: LatentInfo,
                 program_key: Mapping[str, Any] | None = None) -> Program: ...


Checkpoints = Callable[[Any], tuple[RunResult, ...]]
"""``checkpoints(rng_keys) -> one RunResult per budget``: the method's draws at several budgets
from one run, each result's cost and run time counted up to its budget."""


class CheckpointBuilder(Protocol):
    def __call__(self, spec: ModelSpec, data: Dataset, settings: Any, latent_info: LatentInfo,
                 points: Sequence[int], program_key: Mapping[str, Any] | None = None
                 ) -> Checkpoints: ...


def always_applicable(spec: ModelSpec, latent_info: LatentInfo) -> str | None:
    """The default ``applicable``: the method runs on every model."""
    return None


def needs_latent_dim(minimum: int, why: str) -> Callable[[ModelSpec, LatentInfo], str | None]:
    """An ``applicable`` for a method that cannot run below ``minimum`` latent dimensions: its
    reason is ``why`` with ``{dim}`` filled in (say what refuses it and what to use instead)."""

    def applicable(spec: ModelSpec, latent_info: LatentInfo) -> str | None:
        dim = latent_info.unconstrained_dim
        return why.format(dim=dim) if dim < minimum else None

    return applicable


@dataclass(frozen=True)
class Method:
    """One inference method, declared.

    ``defaults`` maps every profile to the settings' values; ``overrides`` maps a profile to
    ``{model: values}`` or ``{"model/method": values}`` (a document's own settings). ``baseline``
    marks the method speed-ups are relative to (one per registry: NUTS). ``psis`` says whether
    ``log_weights`` are those of the draws' own density, so PSIS k-hat applies (AutoDAIS's are of
    an extended space: they are not). ``column`` groups methods into one leaderboard column
    (hand-written guides); ``order`` is the display order. ``budget`` names the settings field
    that sets how much the method computes (its draws, iterations or steps): the ``anytime``
    study sweeps it to draw the method's accuracy against its cost. ``checkpoints``, if the method
    has it, gives the draws at several values of ``budget`` from one run (a chain's prefixes, a fit
    drawn from as it goes), so the sweep costs one program instead of one per budget.
    """

    name: str
    family: str
    description: str
    settings_type: type
    defaults: Mapping[str, Mapping[str, Any]]
    build: Builder
    applicable: Callable[[ModelSpec, LatentInfo], str | None] = always_applicable
    overrides: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    baseline: bool = False
    psis: bool = True
    column: str = ""
    order: int = 1000
    budget: str = ""
    checkpoints: CheckpointBuilder | None = None

    def settings(self, profile: str, model: str) -> Any:
        """The validated settings of this method on ``model`` at ``profile``."""
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        table = self.overrides.get(profile, {})
        model = SETTINGS_OF.get(model, model)
        values = {**self.defaults[profile], **table.get(model, {}),
                  **table.get(f"{model}/{self.name}", {})}
        settings = self.settings_type(**values)
        settings.validate()
        return settings

    def source_hash(self) -> str:
        """sha256 of the module that builds the method's programs: part of a stored executable's
        key, so that editing a user's method file never loads a stale program."""
        module = inspect.getmodule(self.build)
        path = getattr(module, "__file__", None)
        h = hashlib.sha256(self.name.encode())
        if path and Path(path).is_file():
            h.update(Path(path).read_bytes())
        else:  # defined in a notebook: its code object's source, if any
            h.update(repr(getattr(self.build, "__code__", self.build)).encode())
        return h.hexdigest()[:16]

    def problems(self) -> list[str]:
        """What is wrong with the declaration itself (empty when nothing is)."""
        out = []
        problem = name_problem(self.name, "name")
        if problem:
            out.append(problem)
        if not isinstance(self.family, str) or not self.family:
            out.append(f"family must be a string such as {', '.join(FAMILIES)}")
        if not isinstance(self.description, str) or not self.description.strip():
            out.append("description must say what the method is, with its citation")
        if not (dataclasses.is_dataclass(self.settings_type) and isinstance(self.settings_type, type)):
            out.append("settings_type must be a dataclass (frozen, with precision and validate())")
        else:
            if "precision" not in {f.name for f in dataclasses.fields(self.settings_type)}:
                out.append("settings_type needs a precision field (float32 or float64)")
            if not callable(getattr(self.settings_type, "validate", None)):
                out.append("settings_type needs a validate() method that raises ValueError")
        missing = [p for p in PROFILES if p not in self.defaults]
        if missing:
            out.append(f"defaults lacks the profile(s) {', '.join(missing)}")
        if self.budget and dataclasses.is_dataclass(self.settings_type) and self.budget not in {
                f.name for f in dataclasses.fields(self.settings_type)}:
            out.append(f"budget {self.budget!r} must name a field of settings_type")
        if not callable(self.build):
            out.append("build must be callable: build(spec, data, settings, latent_info)")
        if self.checkpoints is not None and (not callable(self.checkpoints) or not self.budget):
            out.append("checkpoints must be callable (spec, data, settings, latent_info, points) "
                       "and needs a budget: the settings field its points are values of")
        return out


@dataclass(frozen=True)
class Timing:
    """How one compiled program was obtained and run (``timed``)."""

    compile_s: float
    run_s: float
    cache: str
    host_others_share: float
    cost: Mapping[str, float] = field(default_factory=dict)  # program_cost.COLUMNS


def timed(program: Callable, *args: Any, identity: Mapping[str, Any] | None = None
          ) -> tuple[Any, Timing]:
    """Compile ``program`` (a ``jax.jit`` function) ahead of time for ``args``, then run it once:
    ``(host outputs, Timing)``. With an ``identity`` the executable is stored and a warm run loads
    it (``inference.executables``); a timed run holds the host lock (parallel workers)."""
    from svi_bench.benchmarks.inference import executables

    run = executables.compile_and_run(program, *args, identity=identity)
    return run.out, Timing(run.compile_s, run.run_s, run.cache, run.others_share, run.cost)


def _prefix(result: RunResult, n: int, grad_evals: np.ndarray, scale: float) -> RunResult:
    """The first ``n`` draws of every chain of ``result``, costing ``grad_evals`` (seeds,)."""
    stats = {k: (v if k == "num_steps_warmup" else v[:, :, :n])
             for k, v in (result.sample_stats or {}).items()}
    columns = {**result.columns, "num_draws": n * next(iter(result.draws.values())).shape[1]}
    return result._replace(draws={k: v[:, :, :n] for k, v in result.draws.items()},
                           grad_evals=grad_evals, run_s=result.run_s * scale, sample_stats=stats,
                           columns=columns)


def chain_prefixes(build: Builder, budget: str) -> CheckpointBuilder:
    """The checkpoints of a sampler whose ``budget`` is its number of draws per chain: one run at
    the largest budget, then each checkpoint n its first n draws. Cost: warm-up plus the first n
    draws' ``num_steps`` (gradient evaluations per draw, from its sample statistics); run time
    apportioned to the checkpoint in proportion to that cost (compile time is the run's)."""

    def checkpoints(spec: ModelSpec, data: Dataset, settings: Any, latent_info: LatentInfo,
                    points: Sequence[int], program_key: Mapping[str, Any] | None = None
                    ) -> Checkpoints:
        last = dataclasses.replace(settings, **{budget: max(points)})
        program = build(spec, data, last, latent_info, program_key=program_key)

        def run(rng_keys: Any) -> tuple[RunResult, ...]:
            result = program(rng_keys)
            stats = result.sample_stats or {}
            if "num_steps" not in stats or "num_steps_warmup" not in stats:
                raise ValueError("chain_prefixes needs num_steps and num_steps_warmup in the "
                                 "sampler's sample_stats to count each prefix's cost")
            warm = stats["num_steps_warmup"].reshape(len(result.grad_evals), -1).sum(axis=1)
            per_draw = np.asarray(stats["num_steps"], dtype=float)
            costs = [warm + per_draw[:, :, :n].sum(axis=(1, 2)) for n in points]
            total = float(np.sum(costs[-1])) or 1.0
            return tuple(_prefix(result, n, c, float(np.sum(c)) / total)
                         for n, c in zip(points, costs, strict=True))

        return run

    return checkpoints
