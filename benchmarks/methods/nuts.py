"""NUTS, the MCMC baseline every other method is compared with, as a ``Method``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from svi_bench.benchmarks.inference.introspect import LatentInfo
from svi_bench.benchmarks.inference.settings import NUTSSettings
from svi_bench.benchmarks.methods.base import Method, Program, RunResult, chain_prefixes
from svi_bench.models import Dataset, ModelSpec

NAME = "nuts"

DEFAULTS = {
    "smoke": dict(num_warmup=150, num_samples=150, num_chains=4),
    "quick": dict(num_warmup=500, num_samples=1000, num_chains=4),
    "paper": dict(num_warmup=1000, num_samples=20000, num_chains=1),
}
OVERRIDES = {
    "paper": {"hierarchical_linreg": dict(num_warmup=2000, num_samples=20000)},
}


def build(spec: ModelSpec, data: Dataset, settings: NUTSSettings, latent_info: LatentInfo,
          program_key: Mapping[str, Any] | None = None) -> Program:
    """``num_chains`` chains per seed, every chain in sequence in one compiled program
    (``inference.nuts.run_nuts``); postprocessing gives the deterministic extra sites."""
    from svi_bench.benchmarks.inference.nuts import run_nuts

    sites = latent_info.sites + tuple(spec.extra_sites)

    def program(rng_keys: Any) -> RunResult:
        run = run_nuts(rng_keys, spec.model, data.model_kwargs, sites, settings, program_key)
        grad_evals = np.array([float(run.num_steps_warmup[i].sum() + run.num_steps[i].sum())
                               for i in range(len(run.num_steps))])
        return RunResult(
            draws=run.draws, grad_evals=grad_evals, compile_s=run.compile_s, run_s=run.run_s,
            cache=run.cache, host_others_share=run.host_others_share, cost=run.cost,
            sample_stats={"energy": run.energy, "diverging": run.diverging,
                          "num_steps": run.num_steps, "num_steps_warmup": run.num_steps_warmup},
            columns={"num_draws": settings.num_chains * settings.num_samples},
        )

    return program


DENSE_NAME = "nuts:dense"
DENSE_DEFAULTS = {profile: {**values, "dense_mass": True} for profile, values in DEFAULTS.items()}
DENSE_OVERRIDES = {profile: {model: {**values, "dense_mass": True}
                             for model, values in by_model.items()}
                   for profile, by_model in OVERRIDES.items()}

NUTS = Method(
    name=NAME,
    family="mcmc",
    description=("NumPyro's No-U-Turn Sampler (Hoffman and Gelman 2014, JMLR 15) with a "
                 "diagonal mass matrix adapted in warm-up: the MCMC baseline every other "
                 "method is compared with (speed-ups are relative to it)."),
    settings_type=NUTSSettings,
    defaults=DEFAULTS,
    overrides=OVERRIDES,
    build=build,
    baseline=True,
    order=0,
    budget="num_samples",
    checkpoints=chain_prefixes(build, "num_samples"),
)

NUTS_DENSE = Method(
    name=DENSE_NAME,
    family="mcmc",
    description=("NumPyro's No-U-Turn Sampler with a dense mass matrix adapted in warm-up "
                 "(dense_mass=True): what a NumPyro user who knows the posterior is correlated "
                 "runs. Same draws and chains as nuts; each step costs more with the dimension, "
                 "but a correlated posterior needs far fewer steps per draw."),
    settings_type=NUTSSettings,
    defaults=DENSE_DEFAULTS,
    overrides=DENSE_OVERRIDES,
    build=build,
    order=1,
    budget="num_samples",
)
"""``nuts`` with ``dense_mass=True`` in every profile: the default ``nuts`` (the baseline) keeps
the diagonal mass matrix, so its rows are unchanged."""

METHODS = [NUTS, NUTS_DENSE]
