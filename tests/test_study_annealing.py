"""The ``annealing`` study (000, live SVI): the document's stopping rule on synthetic losses, the
schedule, the exact posterior every stage is scored against, the table and answer on hand-made
rows whose answer is known, and the smoke profile end to end through ``svi-bench study``."""

from __future__ import annotations

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.inference.annealing import (
    NEVER,
    RULE_TOLERANCE,
    relative_change,
    schedule,
    until_converged,
)
from svi_bench.benchmarks.studies import STUDIES, annealing, annealing_answer
from svi_bench.benchmarks.studies.annealing_answer import (
    FAILED,
    HELPS,
    HURTS,
    SAME,
    UNDECIDED,
    derive,
)
from svi_bench.models import REGISTRY
from tests.conftest import run_cli

# --- the stopping rule ------------------------------------------------------------------------


def _loss(k):
    """A synthetic loss after k batches: geometric decay to a plateau of 10 nats."""
    return 10.0 + 100.0 * 0.5 ** k


def _synthetic(state):
    """A batch of a fake optimiser whose state counts batches; its last loss is _loss(k + 1)."""
    k = state.astype(jnp.float32)
    return state + 1, jnp.linspace(_loss(k), _loss(k + 1), 5)


def _run(tolerance, max_batches, run_batch=_synthetic):
    fn = jax.jit(lambda t, m: until_converged(lambda s: _loss(s.astype(jnp.float32)), run_batch,
                                              jnp.asarray(0), t, m))
    state, end = fn(jnp.float32(tolerance), jnp.int32(max_batches))
    return int(state), jax.tree_util.tree_map(np.asarray, end)


def test_the_rule_stops_at_the_first_batch_whose_relative_change_is_below_the_tolerance():
    expected = next(k + 1 for k in range(100)
                    if abs(_loss(k + 1) - _loss(k)) / abs(_loss(k)) < RULE_TOLERANCE)
    state, end = _run(RULE_TOLERANCE, 50)
    assert state == expected == int(end.batches) and bool(end.converged)
    assert float(end.loss_before) == pytest.approx(_loss(expected - 1), rel=1e-6)
    assert float(end.loss) == pytest.approx(_loss(expected), rel=1e-6)
    assert float(relative_change(end.loss_before, end.loss)) < RULE_TOLERANCE
    # the batch before did not meet the rule
    assert abs(_loss(expected - 1) - _loss(expected - 2)) / _loss(expected - 2) >= RULE_TOLERANCE


def test_the_cap_not_the_rule_ends_a_stage_that_keeps_changing_and_says_so():
    state, end = _run(1e-9, 4)
    assert state == 4 and int(end.batches) == 4 and not bool(end.converged)
    state, end = _run(NEVER, 7)  # the direct fit: exactly its batch budget
    assert state == 7 and not bool(end.converged)


def test_non_finite_losses_never_meet_the_rule_are_counted_and_a_diverged_batch_ends_it():
    def some_nan(state):
        return state + 1, jnp.array([jnp.nan, 1.0, 2.0, jnp.inf, jnp.nan])

    state, end = _run(RULE_TOLERANCE, 3, some_nan)
    assert state == 3 and not bool(end.converged) and int(end.nonfinite_losses) == 9
    assert float(end.batch_loss_mean) == pytest.approx(1.5)

    def diverged(state):
        return state + 1, jnp.full(5, jnp.nan)

    state, end = _run(RULE_TOLERANCE, 3, diverged)
    assert state == 1 and not bool(end.converged) and int(end.nonfinite_losses) == 5


def test_the_schedule_is_geometric_from_one_to_the_final_concentration():
    alphas = schedule(100)
    assert alphas[0] == 1.0 and alphas[-1] == pytest.approx(0.02) and len(alphas) == 100
    assert np.allclose(alphas[1:] / alphas[:-1], 0.02 ** (1 / 99))
    assert schedule(5) == pytest.approx([1.0, 0.02 ** 0.25, 0.02 ** 0.5, 0.02 ** 0.75, 0.02])
    assert schedule(1) == pytest.approx([0.02])


# --- the exact posterior of every stage ---------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 0.2, 0.02])
def test_each_stage_is_scored_against_its_own_exact_dirichlet(alpha):
    """A stage's reference is exact Dirichlet(alpha + counts) draws, and a stage's draws are
    scored against it by the grid's ``evaluate`` (noise floor, verdict, exact KL)."""
    from svi_bench.benchmarks.scoring.evaluate import evaluate
    from svi_bench.benchmarks.scoring.predictive import Replicates

    sched = annealing.SCHEDULES["smoke"]
    ref = annealing.exact_reference(alpha, sched.n_ref)
    post = alpha + np.bincount([2, 2, 2, 2, 2, 5, 5, 5], minlength=12)
    mean = post / post.sum()
    sd = np.sqrt(post * (post.sum() - post) / (post.sum() ** 2 * (post.sum() + 1)))
    draws = ref.draws["theta"]
    assert ref.ok and draws.shape == (sched.n_ref, 12)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 5 * sd / np.sqrt(sched.n_ref))
    spec = REGISTRY["dirichlet_categorical"]
    ds = spec.make_data(alpha_scale=alpha)
    exact_mean, exact_sd = spec.exact_moments(ds)["theta"]
    assert np.allclose(exact_mean, mean) and np.allclose(exact_sd, sd)
    # exact draws of the right alpha agree (pass); those of the prior-free counts do not

    def scored(theta):
        return evaluate(spec, ds, "x", {"final_elbo": -5.0}, {"theta": theta[None]}, ref,
                        np.full(10, -5.0), Replicates(reason="not kept"))

    rng = np.random.default_rng(1)
    good = scored(rng.dirichlet(post, sched.num_draws))
    assert good["verdict"] == "pass" and good["w1_max"] < 3 * good["w1_max_floor"]
    assert scored(rng.dirichlet(post + 1.0, sched.num_draws))["verdict"] == "fail"
    log_z = spec.log_evidence(ds)
    assert good["kl_exact"] == pytest.approx(log_z + 5.0)


def test_a_stage_row_comes_through_the_runner_without_draws_kept(tmp_path):
    """Each stage's rows are the runner's (timing, ELBO, k-hat, scores) with no artifact, plus
    the study's own columns (how the stage ended, theta's mean)."""
    sched = dataclasses.replace(annealing.SCHEDULES["smoke"], n_stages=2, max_batches=2)
    rows = annealing.run_chains("autonormal", [0], sched, "smoke")
    assert [(r["variant"], r["stage"]) for r in rows] == [("annealed", 0), ("annealed", 1),
                                                          ("direct", 1)]
    for row in rows:
        assert row["status"] == "ok", row["error"]
        assert row["artifact"] == "" and "keeps no draws" in row["ppc_note"]
        assert np.isfinite(row["final_elbo"]) and np.isfinite(row["psis_khat"])
        assert row["verdict"] and np.isfinite(row["w1_max_floor"]) and row["family"] == "vi"
        assert len(json.loads(row["theta_mean"])) == 12 and row["program_run_s"] > 0
    assert rows[0]["stage_capped"] == (rows[0]["stage_batches"] == 2)
    assert rows[-1]["num_steps"] == rows[0]["num_steps"] + rows[1]["num_steps"]


def test_the_stages_run_in_the_models_precision_or_the_schedules(monkeypatch):
    """The programs follow ``ModelSpec.precision`` (a float64 model runs its stages in float64)
    unless the schedule names a precision; the caller's 64-bit mode is left as it was, and a
    float32 schedule keeps the row identities it had before precision was a setting."""
    sched = dataclasses.replace(annealing.SCHEDULES["smoke"], n_stages=2, max_batches=2)
    assert sched.settings().precision == "float32"
    before = annealing.run_hash("autonormal", "annealed", 0, sched)
    monkeypatch.setitem(REGISTRY, annealing.MODEL,
                        dataclasses.replace(REGISTRY[annealing.MODEL], precision="float64"))
    assert sched.settings().precision == "float64"
    assert dataclasses.replace(sched, precision="float32").settings().precision == "float32"
    assert annealing.run_hash("autonormal", "annealed", 0,
                              dataclasses.replace(sched, precision="float32")) == before
    dtypes = []
    finish = annealing._finish_stage

    def spy(run, method, out, *args):
        dtypes.append((out.draws.dtype, out.particle_elbos.dtype))
        return finish(run, method, out, *args)

    monkeypatch.setattr(annealing, "_finish_stage", spy)
    x64 = jax.config.jax_enable_x64
    rows = annealing.run_chains("autonormal", [0], sched, "smoke")
    assert jax.config.jax_enable_x64 == x64
    assert dtypes == [(np.float64, np.float64)] * 3
    assert [r["precision"] for r in rows] == ["float64"] * 3
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    assert annealing.run_hash("autonormal", "annealed", 0, sched) != before


def test_a_guide_that_cannot_run_is_a_failed_row_per_stage_with_its_reason():
    rows = annealing.run_chains("no_such_guide", [0, 3], annealing.SCHEDULES["smoke"], "smoke")
    assert len(rows) == 2 * (annealing.SCHEDULES["smoke"].n_stages + 1)
    assert {r["status"] for r in rows} == {"failed"}
    assert all("no_such_guide" in r["error"] for r in rows), rows[0]["error"]  # names it


# --- the table and the answer ---------------------------------------------------------------------


def _rows(w1: dict[str, tuple[list[float], list[float]]], n_stages: int = 3) -> pd.DataFrame:
    """Ok rows of each guide: n_stages annealed stages per seed (the last with the given W1) and a
    direct fit per seed (its W1 given)."""
    out = []
    for method, (annealed, direct) in w1.items():
        for seed, (a, d) in enumerate(zip(annealed, direct, strict=True)):
            for stage in range(n_stages):
                last = stage == n_stages - 1
                out.append({"method": method, "seed": seed, "variant": "annealed",
                            "stage": stage, "stage_alpha": schedule(n_stages)[stage],
                            "status": "ok", "error": "", "w1_max": a if last else 1.0,
                            "w1_max_floor": 0.05, "kl_exact": 10 * a, "verdict": "warn",
                            "stage_capped": stage == 0, "stage_batches": 3,
                            "cumulative_steps": 300 * (stage + 1), "run_s": 0.1,
                            "compile_s": 2.0})
            out.append({"method": method, "seed": seed, "variant": "direct",
                        "stage": n_stages - 1, "stage_alpha": 0.02, "status": "ok", "error": "",
                        "w1_max": d, "w1_max_floor": 0.05, "kl_exact": 10 * d,
                        "verdict": "fail", "stage_capped": True, "stage_batches": 9,
                        "cumulative_steps": 900, "run_s": 0.3, "compile_s": 2.0})
    return pd.DataFrame(out)


def test_the_finding_needs_the_paired_difference_beyond_students_t_of_its_seeds():
    rows = _rows({
        "autonormal": ([0.10, 0.12, 0.11, 0.09], [0.50, 0.55, 0.48, 0.52]),   # annealing helps
        "automvn": ([0.30, 0.31, 0.29, 0.30], [0.10, 0.11, 0.09, 0.12]),      # it hurts
        "autodiagonalnormal": ([0.2, 0.4, 0.3, 0.5], [0.3, 0.2, 0.5, 0.4]),   # noise
    })
    d = derive(rows).set_index("method")
    assert list(d.index) == ["autonormal", "autodiagonalnormal", "automvn"]  # suite order
    assert d.loc["autonormal", "finding"] == HELPS
    assert d.loc["automvn", "finding"] == HURTS
    assert d.loc["autodiagonalnormal", "finding"] == SAME
    r = d.loc["autonormal"]
    assert r.diff_w1_max == pytest.approx(0.105 - 0.5125)
    assert r.diff_w1_max_se == pytest.approx(np.std([-0.4, -0.43, -0.37, -0.43], ddof=1) / 2)
    assert (r.n_stages, r.n_paired, r.total_steps, r.stages_capped, r.stages_ok) == (
        3, 4, 900, 4, 12)
    assert r.annealed_run_s == pytest.approx(0.3) and r.annealed_verdict == "warn"
    text = STUDIES["annealing"].answer(d.reset_index())
    assert text.startswith("Annealing reaches the final posterior better than a direct fit with "
                           "the same steps for 1 of 3 guides (autonormal), worse for 1 (automvn), "
                           "indistinguishable within seed noise for 1.")
    assert "autonormal: at alpha 0.02 the annealed fit's W1 is 0.105 ± " in text
    assert "beyond t(3) = 3.18 standard errors at 95%" in text
    assert "the 2% rule ended 8 of 12 stages" in text
    assert "verdicts warn (annealed) and fail (direct)" in text


def test_four_seeds_two_and_a_half_standard_errors_apart_are_no_difference():
    """A paired difference 2.5 of its standard errors below zero over 4 seeds: the old 2-se rule
    called it a help; t(3) = 3.18 does not."""
    direct = [0.5, 0.5, 0.5, 0.5]
    steps = np.array([-1.5, -0.5, 0.5, 1.5])
    se = np.std(steps, ddof=1) / 2
    annealed = list(0.5 - 2.5 * se + steps)
    d = derive(_rows({"autonormal": (annealed, direct)})).set_index("method")
    assert d.loc["autonormal", "diff_w1_max"] / d.loc["autonormal", "diff_w1_max_se"] == \
        pytest.approx(-2.5)
    assert d.loc["autonormal", "finding"] == SAME


def test_one_seed_or_failed_runs_give_no_decision_and_say_why():
    rows = _rows({"autonormal": ([0.1], [0.5]), "autoiaf": ([0.1, 0.2], [0.3, 0.4])})
    direct = (rows.method == "autoiaf") & (rows.variant == "direct")
    rows.loc[direct, ["status", "error"]] = ["failed", "non-finite guide parameters"]
    late = (rows.method == "autoiaf") & (rows.variant == "annealed") & (rows.stage == 2)
    rows.loc[late & (rows.seed == 1), ["status", "error"]] = ["failed", "non-finite draws"]
    d = derive(rows).set_index("method")
    assert d.loc["autonormal", "finding"] == UNDECIDED
    assert d.loc["autoiaf", "first_failed_stage"] == 2
    assert d.loc["autoiaf", "first_failed_alpha"] == pytest.approx(0.02)
    assert d.loc["autoiaf", "finding"] == FAILED and d.loc["autoiaf", "n_paired"] == 0
    text = annealing_answer.answer(d.reset_index())
    assert text.startswith("Annealing reaches the final posterior better than a direct fit with "
                           "the same steps for 0 of 2 guides, worse for 0, indistinguishable "
                           "within seed noise for 0, undecided for 1; 1 failed (no seed with both "
                           "runs ok: autoiaf).")
    assert "one seed, so no seed noise" in text
    assert ("autoiaf: no seed has both an ok annealed run and an ok direct fit (1 and 0 of 2) "
            "(non-finite draws, the annealed run failing from stage 2 (alpha 0.02))") in text
    assert annealing_answer.answer(pd.DataFrame()) == "No runs of this study are in the results."


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_study_runs_writes_its_table_and_resumes_without_rerunning(smoke_studies):
    out, proc = smoke_studies.out, smoke_studies.run("annealing")
    sched, scope = annealing.SCHEDULES["smoke"], annealing.SCOPES["smoke"]
    # the live plot's form: the progress line shows each stage, its alpha and the loss
    for stage, alpha in enumerate(schedule(sched.n_stages), start=1):
        assert f"annealing: autonormal stage {stage}/{sched.n_stages} alpha {alpha:.3g} loss " \
            in proc.stderr, proc.stderr[-2000:]
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "annealing"]  # the folder holds every smoke study
    assert len(rows) == len(scope.methods) * scope.seeds * (sched.n_stages + 1)
    assert rows.study_program.all() and set(rows.status) == {"ok"}
    ann = rows[rows.variant == "annealed"].sort_values("stage")
    assert ann.stage.tolist() == list(range(sched.n_stages))
    assert np.allclose(ann.stage_alpha, schedule(sched.n_stages))
    assert [json.loads(d)["alpha_scale"] for d in ann.data] == pytest.approx(ann.stage_alpha)
    assert (ann.stage_batches.between(1, sched.max_batches)).all()
    assert (ann.stage_batches[ann.stage_capped.astype(bool)] == sched.max_batches).all()
    assert ann.cumulative_steps.tolist() == np.cumsum(ann.num_steps).tolist()
    direct = rows[rows.variant == "direct"].iloc[0]
    assert direct.num_steps == ann.num_steps.sum() and direct.stage_alpha == pytest.approx(0.02)
    assert np.isfinite(rows.w1_max).all() and np.isfinite(rows.w1_max_floor).all()
    table = pd.read_parquet(out / "studies" / "annealing.parquet")
    assert table.method.tolist() == list(scope.methods) and (table.n_paired == 1).all()
    assert STUDIES["annealing"].answer(table.drop(columns="profile")) in proc.stdout
    before = rows.set_index(["method", "seed", "settings_hash"]).started_at.sort_index()
    proc = run_cli("study", "annealing", "--profile", "smoke", "--out", str(out), "--resume",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = pd.read_parquet(out / "results.parquet")
    after = after[after.study == "annealing"].set_index(
        ["method", "seed", "settings_hash"]).started_at.sort_index()
    pd.testing.assert_series_equal(before, after)
