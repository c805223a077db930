"""NumPyro's SVI guides as methods: the six autoguides, and each model's hand-written guides
(``manual:<guide>``), all fitted by one SVI program (``inference.svi.fit_svi``)."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpyro.infer import autoguide

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.methods.base import (
    CheckpointBuilder,
    Checkpoints,
    Method,
    Program,
    RunResult,
    always_applicable,
    needs_latent_dim,
)
from svi_bench.models import Dataset, ModelSpec

AUTOGUIDES: dict[str, type[autoguide.AutoGuide]] = {
    "autonormal": autoguide.AutoNormal,
    "autodiagonalnormal": autoguide.AutoDiagonalNormal,
    "automvn": autoguide.AutoMultivariateNormal,
    "autodais": autoguide.AutoDAIS,
    "autobnaf": autoguide.AutoBNAFNormal,
    "autoiaf": autoguide.AutoIAFNormal,
}
FLOW_GUIDES = ("autobnaf", "autoiaf")
AUTODAIS_DEFAULT_K: int = inspect.signature(autoguide.AutoDAIS).parameters["K"].default
"""NumPyro's default number of AutoDAIS annealing steps (``K``)."""
MANUAL_PREFIX = "manual:"
MANUAL_COLUMN = "manual"
"""The one leaderboard column of every hand-written guide."""

# Profile defaults, then per-model overrides (from the documents for `paper`).
DEFAULTS = {
    "smoke": dict(num_steps=300, num_particles=1, learning_rate=1e-2, num_draws=400,
                  final_elbo_particles=200),
    "quick": dict(num_steps=4000, num_particles=4, learning_rate=5e-3, num_draws=4000,
                  final_elbo_particles=4000),
    "paper": dict(num_steps=10000, num_particles=1, learning_rate=1e-3, num_draws=20000,
                  final_elbo_particles=4000),
}
_DAIS_PAPER = dict(K=16, eta_max=0.12, eta_init=0.1, gamma_init=0.9)
OVERRIDES = {
    "paper": {
        # 001 heads or tails: Adam 5e-4, 10000 steps (the normal guide: 50000 steps).
        "coin": dict(learning_rate=5e-4, num_steps=10000),
        "coin/manual:normal": dict(num_steps=50000),
        # 002 toy example: Trace_ELBO(num_particles=10), adam 0.005, 1000 steps.
        "gamma_concentration": dict(learning_rate=5e-3, num_particles=10, num_steps=1000),
        # 000: Adam 1e-3 (the document anneals alpha in 100 stages of >= 100 steps).
        "dirichlet_categorical": dict(learning_rate=1e-3, num_steps=10000),
        # 001 mixtures: Adam 5e-4, 16 particles, 10000 steps.
        "multimodal_2d": dict(learning_rate=5e-4, num_particles=16, num_steps=10000),
        # 001 autoguides: Adam 5e-4, 50000 steps.
        "correlated_gaussian": dict(learning_rate=5e-4, num_steps=50000),
        # 001 practical example: Adam 1e-3, 10000 steps x 8 particles, 40000 draws.
        "linreg_outliers": dict(learning_rate=1e-3, num_particles=8, num_steps=10000,
                                num_draws=40000),
        # 001 high dimensions: Adam 1e-2, 5000 steps x 100 particles; DAIS 50000 steps.
        "hierarchical_linreg": dict(learning_rate=1e-2, num_particles=100, num_steps=5000),
        "hierarchical_linreg/autodais": dict(num_steps=50000, guide_options=_DAIS_PAPER),
        # 002 end-to-end example: Adam 0.01, 10000 steps.
        "bnn": dict(learning_rate=1e-2, num_steps=10000),
    },
    "quick": {
        "coin": dict(learning_rate=5e-3, num_steps=3000),
        "gamma_concentration": dict(learning_rate=5e-3, num_particles=10, num_steps=2000),
        "correlated_gaussian": dict(learning_rate=1e-2, num_steps=4000),
        "multimodal_2d": dict(learning_rate=5e-3, num_particles=16, num_steps=4000),
        "hierarchical_linreg": dict(learning_rate=1e-2, num_particles=16, num_steps=3000),
        "bnn": dict(learning_rate=1e-2, num_steps=4000, num_particles=2),
    },
}


def guide_factory(spec: ModelSpec, method: str, guide_options: Mapping[str, Any]
                  ) -> Callable[[], Any]:
    """A zero-argument builder of a fresh guide: autoguides keep traced state on the instance,
    so every traced function builds its own."""
    if method.startswith(MANUAL_PREFIX):
        guide = spec.guides[method[len(MANUAL_PREFIX):]]
        return lambda: guide
    cls = AUTOGUIDES[method]
    return lambda: cls(spec.model, **guide_options)


def inner_steps(method: str, guide_options: Mapping[str, Any]) -> int:
    """Gradient evaluations per particle and SVI step: ``K`` for AutoDAIS (its annealing steps,
    ``AUTODAIS_DEFAULT_K`` unless set), 1 for every other guide. The grid and the perf suite both
    count ``grad_evals`` as steps x particles x this."""
    return guide_options.get("K", AUTODAIS_DEFAULT_K) if method == "autodais" else 1


def fit_result(fit: Any, settings: SVISettings, method: str) -> RunResult:
    """A fitted guide's ``inference.svi.SVIFit`` as the method's ``RunResult`` (one chain)."""
    grads = float(settings.num_steps * settings.num_particles
                  * inner_steps(method, settings.guide_options))
    return RunResult(
        draws={k: np.expand_dims(v, 1) for k, v in fit.draws.items()},  # one chain
        grad_evals=np.full(len(fit.losses), grads), compile_s=fit.compile_s,
        run_s=fit.run_s, cache=fit.cache, host_others_share=fit.host_others_share,
        cost=fit.cost,
        losses=fit.losses, log_weights=fit.particle_elbos,
        params_finite=fit.params_finite,
        columns={"num_draws": settings.num_draws, "num_steps": settings.num_steps,
                 "num_particles": settings.num_particles,
                 "log_weights_precision": fit.particle_elbos_precision},
    )


def _builder(method: str) -> Callable[..., Program]:
    def build(spec: ModelSpec, data: Dataset, settings: SVISettings, latent_info: LatentInfo,
              program_key: Mapping[str, Any] | None = None) -> Program:
        """Every seed's fit in sequence in one compiled program (``inference.svi.fit_svi``)."""
        from svi_bench.benchmarks.inference.svi import fit_svi

        make_guide = guide_factory(spec, method, settings.guide_options)

        def program(rng_keys: Any) -> RunResult:
            return fit_result(fit_svi(rng_keys, spec.model, make_guide, data.model_kwargs,
                                      latent_info.sites, settings, tuple(spec.extra_sites),
                                      program_key), settings, method)

        return program

    return build


def _checkpoint_builder(method: str) -> CheckpointBuilder:
    def checkpoints(spec: ModelSpec, data: Dataset, settings: SVISettings,
                    latent_info: LatentInfo, points: Sequence[int],
                    program_key: Mapping[str, Any] | None = None) -> Checkpoints:
        """One fit to the largest of ``points`` (steps), drawn from at each of them
        (``inference.anytime.fit_svi_checkpoints``); run time apportioned by steps."""
        from svi_bench.benchmarks.inference.anytime import fit_svi_checkpoints

        make_guide = guide_factory(spec, method, settings.guide_options)
        per_step = settings.num_particles * inner_steps(method, settings.guide_options)
        last = max(points)

        def run(rng_keys: Any) -> tuple[RunResult, ...]:
            fit = fit_svi_checkpoints(rng_keys, spec.model, make_guide, data.model_kwargs,
                                      latent_info.sites, settings, points,
                                      tuple(spec.extra_sites), program_key)
            seeds = len(fit.losses)
            return tuple(RunResult(
                draws={k: np.expand_dims(v, 1) for k, v in draws.items()},  # one chain
                grad_evals=np.full(seeds, float(n * per_step)), compile_s=fit.compile_s,
                run_s=fit.run_s * n / last, cache=fit.cache,
                host_others_share=fit.host_others_share, cost=fit.cost, losses=fit.losses[:, :n],
                params_finite=finite,
                columns={"num_draws": settings.num_draws, "num_steps": n,
                         "num_particles": settings.num_particles},
            ) for n, draws, finite in zip(points, fit.draws, fit.params_finite, strict=True))

        return run

    return checkpoints


def _flows_need_two_dims(name: str) -> Callable[[ModelSpec, LatentInfo], str | None]:
    return needs_latent_dim(2, f"{AUTOGUIDES[name].__name__} needs a latent dimension of at "
                               "least 2 (NumPyro refuses latent dim = {dim}); use "
                               "AutoDiagonalNormal instead")


def _first_paragraph(doc: str | None) -> str:
    return " ".join((doc or "").strip().split("\n\n")[0].split())


def autoguide_method(name: str, order: int) -> Method:
    """The method of one NumPyro autoguide (``AUTOGUIDES[name]``)."""
    cls = AUTOGUIDES[name]
    doc = _first_paragraph(cls.__doc__)
    return Method(
        name=name, family="vi",
        description=f"NumPyro autoguide {cls.__name__}: {doc}" if doc else f"NumPyro {cls.__name__}.",
        settings_type=SVISettings, defaults=DEFAULTS, overrides=OVERRIDES, build=_builder(name),
        applicable=_flows_need_two_dims(name) if name in FLOW_GUIDES else always_applicable,
        psis=name != "autodais",  # its particle weights are of the extended (annealed) space
        order=200 + order, budget="num_steps", checkpoints=_checkpoint_builder(name),
    )


def manual_guide_method(name: str) -> Method:
    """The method ``manual:<guide>``: the model's own guide of that name (``ModelSpec.guides``)."""
    guide = name.removeprefix(MANUAL_PREFIX)

    def applicable(spec: ModelSpec, latent_info: LatentInfo) -> str | None:
        if guide not in spec.guides:
            return (f"model {spec.name!r} has no manual guide {guide!r} "
                    f"(has: {', '.join(spec.guides) or 'none'})")
        return None

    return Method(
        name=name, family="vi",
        description=f"Hand-written guide '{guide}' of the model (ModelSpec.guides), fitted by SVI.",
        settings_type=SVISettings, defaults=DEFAULTS, overrides=OVERRIDES, build=_builder(name),
        applicable=applicable, column=MANUAL_COLUMN, order=100, budget="num_steps",
        checkpoints=_checkpoint_builder(name),
    )


def is_numpyro_guide(name: str) -> bool:
    """Whether ``name`` is one of this module's methods (an autoguide or a manual guide)."""
    return name in AUTOGUIDES or name.startswith(MANUAL_PREFIX)


def manual_guides_of(spec: ModelSpec) -> list[str]:
    """The ``manual:<guide>`` methods of a model, in its declared order."""
    return [MANUAL_PREFIX + g for g in spec.guides]


def describe_manual(name: str, specs: Mapping[str, ModelSpec]) -> str:
    """A manual guide's description with its owners' docstrings (for the results manifest)."""
    guide = name.removeprefix(MANUAL_PREFIX)
    docs = [f"{spec.name}: {_first_paragraph(spec.guides[guide].__doc__) or 'no docstring'}"
            for spec in specs.values() if guide in spec.guides]
    return f"Hand-written guide '{guide}'. " + " ".join(docs)
