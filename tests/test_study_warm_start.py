"""The ``warm_start`` study: its answer on hand-made tables, that a warm start really starts from
the given fit (SVI parameters; NUTS step size and mass matrix), and the smoke profile end to end
through ``svi-bench study`` (rows, table, ``--resume`` reruns nothing)."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.warm_start import (
    NUTSPrograms,
    SVIPrograms,
    reuse_kernel,
    seed_keys,
)
from svi_bench.benchmarks.methods import numpyro_guides
from svi_bench.benchmarks.scoring.verdict import LEVELS
from svi_bench.benchmarks.studies import warm_start
from svi_bench.benchmarks.studies.warm_start_answer import answer, derive, pairs
from svi_bench.models import REGISTRY
from tests.conftest import run_cli

SPEC = REGISTRY["linreg_outliers"]


def _rows(method: str, scratch: list[float], warm: list[float]) -> list[dict]:
    column = "grad_evals" if method == "nuts" else "converged_step"
    out = []
    for start, costs in (("scratch", scratch), ("warm", warm)):
        for seed, cost in enumerate(costs):
            out.append({"method": method, "start": start, "data_seed": 123, "seed": seed,
                        "status": "ok", column: cost, "time_to_plateau_s": cost / 1000,
                        "w1_max": 0.1, "w1_max_floor": 0.05, "verdict": "pass"})
    return out


def test_derive_and_answer_on_a_known_table():
    rows = pd.DataFrame(_rows("automvn", [400, 400, 400], [100, 200, 300])
                        + _rows("nuts", [1000, 1000], [200, 200]))
    derived = derive(rows)
    warm = derived[derived.start == "warm"].set_index("method")
    assert warm.loc["automvn", "saved_frac"] == pytest.approx(0.5)
    assert warm.loc["automvn", "saved_frac_se"] == pytest.approx(0.25 / np.sqrt(3))
    assert warm.loc["automvn", "saved_s"] == pytest.approx(0.2)
    assert warm.loc["nuts", "saved_frac"] == pytest.approx(0.8)
    assert warm.loc["automvn", "n_pairs"] == 3 and warm.loc["nuts", "cost"] == 200
    text = answer(derived)
    assert "saving 50 ± 14%" in text and "saving 80 ± 0%" in text
    assert "saves 50% of SVI's steps to plateau and 80% of NUTS's" in text


def test_a_pair_without_a_plateau_has_no_saving_and_is_counted():
    rows = pd.DataFrame(_rows("automvn", [400, np.nan], [100, 100]))
    assert len(pairs(rows).dropna(subset=["saved_frac"])) == 1
    derived = derive(rows)
    assert derived.set_index("start").loc["scratch", "n_no_plateau"] == 1
    assert "1 scratch fits showed no plateau" in answer(derived)


def test_svi_warm_start_starts_from_the_given_parameters():
    settings = SVISettings(num_steps=800, num_particles=1, learning_rate=1e-2, num_draws=10)
    method = "autodiagonalnormal"
    programs = SVIPrograms(SPEC.model, numpyro_guides.guide_factory(SPEC, method, {}), settings,
                           warm_start.SITES)
    data = SPEC.make_data(12).model_kwargs
    (params, losses, _), _ = programs.scratch(seed_keys([0, 1], 0), data)
    (_, warm_losses, _), _ = programs.warm(seed_keys([0, 1], 1), params, data)
    (_, fresh_losses, _), _ = programs.scratch(seed_keys([0, 1], 1), data)
    losses, warm_losses, fresh_losses = map(np.asarray, (losses, warm_losses, fresh_losses))
    tail = losses[:, -100:]
    noise = 4 * tail.std(axis=1) + 0.5
    assert np.all(np.abs(warm_losses[:, 0] - tail.mean(axis=1)) < noise)
    assert np.all(fresh_losses[:, 0] - tail.mean(axis=1) > noise)


def test_nuts_reuse_passes_step_size_and_mass_matrix():
    settings = NUTSSettings(num_warmup=30, num_samples=10, num_chains=1)
    data = SPEC.make_data(12).model_kwargs
    programs = NUTSPrograms(SPEC.model, settings, reuse_warmup=5, sites=warm_start.SITES)
    (_, carry, steps), _ = programs.fresh(seed_keys([0], 0), data)
    z, step_size, imm = carry
    assert np.asarray(steps).shape == (1, 40)
    # the kernel the reuse program builds starts at exactly the given step size and mass matrix
    one = jax.tree_util.tree_map(lambda a: a[0], carry)
    kernel = reuse_kernel(SPEC.model, settings, one[1], one[2], adapt_step_size=False)
    state = kernel.init(jax.random.PRNGKey(3), 5, init_params=one[0], model_args=(),
                        model_kwargs=data)
    assert float(state.adapt_state.step_size) == pytest.approx(float(one[1]))
    for given, used in zip(jax.tree_util.tree_leaves(one[2]),
                           jax.tree_util.tree_leaves(state.adapt_state.inverse_mass_matrix),
                           strict=True):
        np.testing.assert_allclose(used, given)
    for site in one[0]:
        np.testing.assert_allclose(state.z[site], one[0][site])
    # the reuse program keeps the mass matrix (no mass adaptation) and runs the short warm-up
    (_, after, steps), _ = programs.reuse(seed_keys([0], 1), carry, data)
    assert np.asarray(steps).shape == (1, 15)
    for given, kept in zip(jax.tree_util.tree_leaves(imm), jax.tree_util.tree_leaves(after[2]),
                           strict=True):
        np.testing.assert_allclose(kept, given)


def test_reuse_warmup_is_a_tenth_of_the_fresh_one():
    sched = warm_start.SCHEDULES["quick"]
    assert sched.reuse_warmup == sched.nuts.num_warmup // 10
    other = dataclasses.replace(sched, new_data=(123,))
    assert warm_start.run_hash("automvn", "warm", sched) != warm_start.run_hash(
        "automvn", "warm", other)


@pytest.mark.slow
def test_smoke_profile_end_to_end_and_resume(smoke_studies):
    out = smoke_studies.out
    smoke_studies.run("warm_start")
    results = pd.read_parquet(out / "results.parquet")
    mine = results[results.study == "warm_start"]
    scope = warm_start.SCOPES["smoke"]
    assert len(mine) == len(scope.methods) * scope.seeds * 3  # base, scratch, warm
    assert set(mine.start) == {"base", "scratch", "warm"} and set(mine.data_seed) == {12, 123}
    failed = mine[mine.status != "ok"]
    assert failed.error.str.len().gt(0).all()
    # every fit's row came through the grid's runner: its draws as an ArviZ artifact, the
    # family's diagnostics, the scores against its data set's reference
    ok = mine[mine.status == "ok"]
    assert len(ok) and ok.artifact.map(lambda a: (out / a).is_file()).all()
    assert set(mine.family) == {"mcmc", "vi"}
    assert ok[ok.family == "mcmc"].min_ess_bulk.notna().all()  # one chain per seed: no R-hat
    assert ok.verdict.isin(LEVELS).all() and ok.w1_max.notna().all()
    table = pd.read_parquet(out / "studies" / "warm_start.parquet")
    assert set(table.method) == set(scope.methods) and set(table.start) == {"scratch", "warm"}
    before = mine.set_index(["method", "seed", "settings_hash", "data"]).started_at
    proc = run_cli("study", "warm_start", "--profile", "smoke", "--out", str(out), "--resume",
                   "--no-progress")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = pd.read_parquet(out / "results.parquet")
    after = after[after.study == "warm_start"].set_index(
        ["method", "seed", "settings_hash", "data"]).started_at
    pd.testing.assert_series_equal(before.sort_index(), after.sort_index())
