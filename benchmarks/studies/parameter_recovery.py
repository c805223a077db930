"""``parameter_recovery`` (001, "Autoguides: Simpler & Faster" and "Building Complicated Models
From Mixtures"): the fitted guide's parameters, seed by seed, against the model's truth.

The document reads two fits' parameters: AutoMultivariateNormal's ``auto_scale_tril`` on the
rotated Gaussian (``correlated_gaussian``: sds 1 and 3 at 45 degrees; it recovers 1.007, 3.013 and
44.1 degrees) and the rotated mixture guide's ``b``, ``sig1_q``, ``sig2_q`` and ``theta`` on
``multimodal_2d``. Grid rows keep no guide parameters (the program returns them, the grid scores
the draws and drops them), so this study runs its own fits: the grid's program and settings of
the cell (``inference.svi.fit_svi``, the profile's steps, particles and learning rate), each
fit scored through the runner like a grid cell (no draws kept) plus its fitted (constrained)
parameters as JSON (``guide_params``). Reading the parameters, not the draws, is what the
document does and adds no Monte Carlo noise: the spread over seeds is the optimisation's alone
(the draws would give the covariance only up to their own sampling error).

The caveat the document names: ``auto_scale_tril`` lives in the unconstrained space. The
rotated Gaussian's priors are ``ImproperUniform`` on the real line, whose transform is the
identity, so there it is the covariance of (x, y) itself (checked in the tests). Table, answer
and figure: ``parameter_recovery_answer``.
"""

from __future__ import annotations

import dataclasses
import functools
import json

import jax
import numpy as np

from svi_bench.benchmarks.grid import run_spec, runner, store
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec, base_row, failed_rows, one_line
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.inference.svi import fit_svi
from svi_bench.benchmarks.methods import numpyro_guides, registry
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.studies.base import Scope, Study, StudyRun, Variant
from svi_bench.benchmarks.studies.parameter_recovery_answer import (
    CASES,
    VARIANT,
    answer,
    derive,
    figure,
)
from svi_bench.models import REGISTRY

NAME = "parameter_recovery"
_MODELS = tuple(dict.fromkeys(model for model, _ in CASES))
_VARIANTS = (Variant(VARIANT, {"variant": VARIANT}),)
SCOPES = {
    "smoke": Scope(_MODELS, tuple(m for _, m in CASES), 2, _VARIANTS),
    "quick": Scope(_MODELS, tuple(m for _, m in CASES), 10, _VARIANTS),
    "paper": Scope(_MODELS, tuple(m for _, m in CASES), 20, _VARIANTS),
}


def case_run(model: str, method: str, seeds: list[int], profile: str) -> RunSpec:
    """The grid's cell of (model, method) at ``profile``, under the study's own identity (the
    row carries the guide's parameters a grid row does not)."""
    cell = next(run_spec.plan([REGISTRY[model]], [method], seeds, profile))
    return dataclasses.replace(cell, hash=settings_hash(model, method, cell.settings,
                                                        cell.data_key, study=NAME))


def _identities(model: str, method: str, seed: int, profile: str) -> list[tuple]:
    run = case_run(model, method, [seed], profile)
    return [store.identity({"model": model, "method": method, "seed": seed,
                            "settings_hash": run.hash,
                            "data": json.dumps(run.data_key, sort_keys=True)})]


def params_json(params: dict[str, np.ndarray], i: int) -> str:
    """Seed ``i``'s fitted parameters as JSON ({name: value or nested list})."""
    return json.dumps({k: np.asarray(v[i], dtype=float).tolist() for k, v in params.items()})


def fit_rows(run: RunSpec, out_dir) -> list[dict]:
    """The cell's fits (its seeds in one program, the grid's ``fit_svi``): rows scored through
    the runner (no draws kept) with each seed's ``guide_params``; an exception fails the rows
    with its reason. ``run.spec`` may add guides to the registered model's; the reference is
    the registered model's."""
    spec, seeds = run.spec, list(run.seeds)
    try:
        ds = spec.data_for(run.data_key)
        info = latent_info(spec.model, ds.model_kwargs)
        rows = [base_row(run, s) | {"latent_dim": info.unconstrained_dim} for s in seeds]
        settings = run.settings
        keys = jax.vmap(jax.random.PRNGKey)(np.asarray(seeds, dtype=np.uint32))
        fit = fit_svi(keys, spec.model,
                      numpyro_guides.guide_factory(spec, run.method, settings.guide_options),
                      ds.model_kwargs, info.sites, settings, tuple(spec.extra_sites))
        reference = functools.cache(lambda: get_reference(
            REGISTRY[spec.name], ds, run.data_key, info.sites, out_dir,
            quality=run.reference_quality, log=lambda msg: None))
        runner.finish_rows(run, registry.resolve(run.method), ds,
                           numpyro_guides.fit_result(fit, settings, run.method), rows, out_dir,
                           reference, keep_draws=False)
        for i, row in enumerate(rows):
            row["guide_params"] = params_json(fit.params, i)
    except Exception as exc:
        rows = failed_rows(run, one_line(exc))
    return rows


def run_case(model: str, method: str, seeds: list[int], profile: str, out_dir) -> list[dict]:
    """One case's rows (``fit_rows``) under the study's variant."""
    return [row | {"variant": VARIANT}
            for row in fit_rows(case_run(model, method, seeds, profile), out_dir)]


def execute(run: StudyRun) -> None:
    """Every case of the profile; a seed stored ok is skipped on resume."""
    scope = SCOPES[run.profile]
    for model, method in CASES:
        seeds = run.seeds_to_run(scope, lambda s, m=model, g=method: _identities(
            m, g, s, run.profile))
        if seeds:
            run.progress(f"{model} {method}: fitting {len(seeds)} seeds")
            run.store.add(run_case(model, method, seeds, run.profile, run.out_dir))


STUDY = Study(
    name=NAME,
    question="Do the fitted guides' own parameters recover the model's truth: AutoMultivariate"
             "Normal's covariance (sds and angle) on the rotated Gaussian and the rotated "
             "mixture guide's mode separation, widths and angle on the two-mode density, within "
             "the spread over seeds?",
    document="001",
    section="Autoguides: Simpler & Faster",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="The document's figures redrawn from the fitted parameters: left, the "
                   "rotated Gaussian's density with each seed's AutoMultivariateNormal 1- and "
                   "2-sd ellipses (from auto_scale_tril) and the truth's dashed; right, the "
                   "two-mode density with each seed's mixture guide (mode centres at ±b along "
                   "theta, 2-sd ellipses of sig1_q by sig2_q) and the true mode centres (x).",
    execute=execute,
)

__all__ = ["SCOPES", "STUDY", "case_run", "execute", "fit_rows", "params_json", "run_case"]
