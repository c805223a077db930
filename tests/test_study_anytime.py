"""The anytime study: checkpoint schedule, crossover on hand-made curves, checkpoint draws equal
an ordinary fit, and the smoke run end to end with resume."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.inference import anytime as programs
from svi_bench.benchmarks.inference.settings import SVISettings
from svi_bench.benchmarks.methods import numpyro_guides
from svi_bench.benchmarks.scoring.references import get_reference
from svi_bench.benchmarks.studies import anytime
from svi_bench.benchmarks.studies.anytime import crossover
from svi_bench.models import REGISTRY
from tests.conftest import run_cli


def _curve(costs, values):
    return pd.DataFrame({"grad_evals": costs, "w1_max": values})


def test_checkpoint_schedule_doubles_and_chunks_sum_to_last():
    points = programs.checkpoints(3, 6)
    assert points == [8, 16, 32, 64]
    assert programs.chunk_lengths(points) == [8, 8, 16, 32]
    with pytest.raises(ValueError):
        programs.checkpoints(4, 2)


def test_crossover_known_none_and_nuts_ahead():
    costs = [10, 100, 1000, 10000]
    svi = _curve(costs, [0.5, 0.2, 0.15, 0.14])
    nuts = _curve(costs, [2.0, 0.4, 0.15, 0.05])
    assert crossover(svi, nuts) == 1000
    assert np.isinf(crossover(svi, _curve(costs, [2.0, 1.0, 0.5, 0.3])))
    assert np.isnan(crossover(svi, _curve(costs, [0.1, 0.05, 0.02, 0.01])))


def test_last_checkpoint_equals_ordinary_fit():
    spec = REGISTRY["coin"]
    data = spec.make_data(None).model_kwargs
    settings = SVISettings(num_steps=32, num_particles=1, learning_rate=1e-2, num_draws=50)
    guide = numpyro_guides.guide_factory(spec, "autonormal", {})
    sites = ("latent_fairness",)
    key = jax.random.PRNGKey(3)
    fit = programs.fit_svi_checkpoints(key[None], spec.model, guide, data, sites, settings,
                                       [8, 16, 32])
    plain = programs.ordinary_fit(spec.model, guide, settings, 32, sites, key, data)
    assert fit.losses.shape == (1, 32) and len(fit.draws) == 3 and fit.params_finite[-1].all()
    for s in sites:
        np.testing.assert_allclose(fit.draws[-1][s][0], plain[s], rtol=1e-5, atol=1e-6)
    assert not np.allclose(fit.draws[0][sites[0]][0], plain[sites[0]])  # 8 steps are not 32


def test_nuts_checkpoints_are_prefixes_of_the_grid_program():
    """NUTS's checkpoints are the first n draws of the grid's own NUTS run at the largest
    budget: cost is warm-up plus those draws' leapfrog steps, run time apportioned by it."""
    from svi_bench.benchmarks.inference.introspect import latent_info
    from svi_bench.benchmarks.inference.settings import NUTSSettings
    from svi_bench.benchmarks.methods import nuts

    spec = REGISTRY["coin"]
    ds = spec.make_data(None)
    info = latent_info(spec.model, ds.model_kwargs)
    settings = NUTSSettings(num_warmup=20, num_samples=8, num_chains=1)
    keys = jax.vmap(jax.random.PRNGKey)(np.array([0, 1], dtype=np.uint32))
    whole = nuts.build(spec, ds, settings, info)(keys)
    parts = nuts.NUTS.checkpoints(spec, ds, settings, info, [2, 4, 8])(keys)
    assert [p.columns["num_draws"] for p in parts] == [2, 4, 8]
    np.testing.assert_array_equal(parts[-1].draws["latent_fairness"],
                                  whole.draws["latent_fairness"])
    np.testing.assert_array_equal(parts[0].draws["latent_fairness"],
                                  whole.draws["latent_fairness"][:, :, :2])
    np.testing.assert_array_equal(parts[-1].grad_evals, whole.grad_evals)
    warm = whole.sample_stats["num_steps_warmup"].sum(axis=(1, 2))
    np.testing.assert_array_equal(
        parts[0].grad_evals, warm + whole.sample_stats["num_steps"][:, :, :2].sum(axis=(1, 2)))
    assert parts[0].run_s < parts[-1].run_s and parts[0].sample_stats["diverging"].shape[-1] == 2


def test_smoke_end_to_end_and_resume(smoke_studies):
    out = smoke_studies.out
    smoke_studies.run("anytime")
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "anytime"]
    assert (rows.status == "ok").all() and rows.checkpoint.nunique() > 3
    assert {"grad_evals", "checkpoint_run_s", "w1_max", "floor"} <= set(rows.columns)
    assert set(rows.floor_source) == {"exact sampler"}  # coin has one
    nuts = rows[rows.method == "nuts"]
    # a chain's draws are worth fewer independent ones: its ESS floor is never below the raw one
    assert (nuts.min_ess_bulk <= nuts.checkpoint_at + 1e-9).all()
    assert (nuts.floor_ess >= nuts.floor * 0.8).all()
    pathfinder = rows[rows.method == "pathfinder"]  # one grid cell per iteration budget
    assert pathfinder.settings_hash.nunique() == len(pathfinder) > 3
    assert pathfinder.artifact.map(lambda a: (out / a).is_file()).all()
    assert pathfinder.sort_values("checkpoint").grad_evals.is_monotonic_increasing
    table = pd.read_parquet(out / "studies" / "anytime.parquet")
    assert set(table.method) == {"autonormal", "automvn", "pathfinder"}
    before = len(pd.read_parquet(out / "results.parquet"))
    again = run_cli("study", "anytime", "--profile", "smoke", "--out", str(out), "--resume",
                    "--no-progress")
    assert again.returncode == 0, again.stderr
    assert len(pd.read_parquet(out / "results.parquet")) == before


def test_exact_sampler_floor_matches_reference_subsets_and_shrinks(tmp_path):
    """Two estimates of the same floor (fresh exact draws, disjoint reference subsets) agree to
    Monte Carlo noise, and both shrink like 1/sqrt(n)."""
    spec = REGISTRY["coin"]
    key = spec.data_key(None)
    ds = spec.data_for(key)
    ref = get_reference(spec, ds, key, ("latent_fairness",), tmp_path, quality="full",
                        log=lambda msg: None)
    small, source = anytime.floor_at(spec, ds, ref, 64)
    big, _ = anytime.floor_at(spec, ds, ref, 4096)
    assert source == "exact sampler"
    assert 3 < small / big < 16  # sqrt(64) = 8 expected
    subsets = anytime.metrics.noise_floor(
        anytime.flatten_draws(ref.draws)[1], 64, np.random.default_rng(1), 20)["w1_max_floor"]
    assert 0.5 < small / subsets < 2


def test_predictive_models_get_a_not_applicable_row_and_sentence():
    assert anytime.not_applicable_reason(REGISTRY["bnn"])
    assert anytime.not_applicable_reason(REGISTRY["coin"]) == ""
    assert "bnn" in anytime.SCOPES["quick"].models
    rows = pd.DataFrame([{"model": "bnn", "method": "all", "seed": 0, "status": "not_applicable",
                          "error": anytime.not_applicable_reason(REGISTRY["bnn"]),
                          "w1_max": np.nan}])
    table = anytime.derive(rows)
    assert list(table.model) == ["bnn"]
    assert anytime.answer(table).startswith("bnn: no curve, judged in predictive space")


SMALL = anytime.Schedule({"num_samples": (2, 3), "num_steps": (2, 3)}, {"num_samples": (4, 5)},
                         {"num_chains": 1, "num_particles": 1, "num_warmup": 20,
                          "learning_rate": 1e-2, "num_draws": 50}, "smoke")


def test_shape_ints_and_one_dimensional_latents(tmp_path):
    """A model whose data hold a shape-fixing int (hierarchical_linreg's n_groups) runs; a flow
    on a one-dimensional latent is a not_applicable row with NumPyro's reason, not a crash."""
    from svi_bench.benchmarks.grid import store

    store.check_writable(tmp_path)
    rows = anytime.curve("hierarchical_linreg", "autonormal", 0, SMALL, "smoke", tmp_path)
    assert [r["status"] for r in rows] == ["ok", "ok"], rows[0].get("error")
    (row,) = anytime.curve("coin", "autoiaf", 0, SMALL, "smoke", tmp_path)
    assert row["status"] == "not_applicable" and "latent dimension" in row["error"]


def test_checkpointed_methods_give_grid_rows_from_one_program(tmp_path):
    """NUTS and a NumPyro guide: one program, one ordinary row per checkpoint (family,
    diagnostics, artifact, scores, the study's fixed settings) under the study's identity."""
    from svi_bench.benchmarks.grid import store

    store.check_writable(tmp_path)
    nuts = anytime.curve("coin", "nuts", 0, SMALL, "smoke", tmp_path)
    guide = anytime.curve("coin", "autonormal", 0, SMALL, "smoke", tmp_path)
    for rows, at in ((nuts, [4, 8]), (guide, [4, 8])):
        assert [r["status"] for r in rows] == ["ok", "ok"], rows[0].get("error")
        assert [r["checkpoint_at"] for r in rows] == at
        assert rows[0]["grad_evals"] < rows[1]["grad_evals"]
        assert rows[0]["settings_hash"] != rows[1]["settings_hash"]
        assert len({r["cache"] for r in rows}) == 1  # one program served both
        assert all((tmp_path / r["artifact"]).is_file() and r["verdict"] for r in rows)
    assert all(r["family"] == "mcmc" and np.isfinite(r["floor_ess"]) for r in nuts)
    assert '"num_chains": 1' in nuts[0]["settings"] and nuts[1]["num_draws"] == 8
    assert [r["num_steps"] for r in guide] == [4, 8] and '"num_particles": 1' in guide[0]["settings"]
    assert all(np.isfinite(r["final_loss_mean"]) for r in guide)


def test_rows_of_an_earlier_definition_are_not_mixed_in():
    """Own-program rows carry the study's fingerprint (scope and schedule); a changed schedule
    is another fingerprint, and only the current one's rows reach the answer."""
    import dataclasses

    from svi_bench.benchmarks.studies.base import select_own_rows

    study = anytime.STUDY
    current = study.fingerprint("quick")
    assert current != study.fingerprint("smoke")
    changed = dataclasses.replace(study, program_settings=lambda p: anytime.SCHEDULES["paper"])
    assert changed.fingerprint("quick") != current
    rows = pd.DataFrame({"study": "anytime", "profile": "quick",
                         "study_settings": [current, changed.fingerprint("quick"), None]})
    assert select_own_rows(study, "quick", rows).study_settings.tolist() == [current]


def test_a_method_that_ends_before_nuts_first_draws_is_compared_at_its_end():
    """Pathfinder's whole run can cost less than NUTS's warm-up: no common range, so its last
    accuracy is set against NUTS's first, with both floors, not read as NUTS being ahead."""
    def rows(method, costs, w1s, floors):
        return [{"model": "m", "method": method, "seed": 0, "status": "ok", "grad_evals": c,
                 "checkpoint_run_s": c * 1e-4, "w1_max": w, "floor": f}
                for c, w, f in zip(costs, w1s, floors, strict=True)]

    table = anytime.derive(pd.DataFrame(
        rows("pathfinder", [20, 60, 120], [0.9, 0.1, 0.03], [0.02] * 3)
        + rows("nuts", [1500, 1600, 1800], [0.3, 0.2, 0.1], [0.2, 0.14, 0.1])))
    sentence = anytime.answer(table)
    assert sentence.startswith("m/pathfinder: its whole run ends at about 120 gradient")
    assert "w1_max 0.03 (floor 0.02) against NUTS's first 0.3 (floor 0.2)" in sentence
    assert "pathfinder is the more accurate" in sentence
