"""The ``locked_mode`` study (000, easing out of a locked mode): the tempered target, where a
fit ends, the table and answer on hand-made rows whose answer is known, and the smoke profile end
to end with ``--resume``."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density

from svi_bench.benchmarks.studies import STUDIES, locked_mode
from svi_bench.benchmarks.studies.locked_mode_answer import (
    BOTH,
    COVERS_WORSE,
    FREES,
    HURTS,
    NEITHER,
    OTHER,
    SAME,
    START,
    answer,
    beyond_noise,
    derive,
    place,
)
from svi_bench.models import REGISTRY
from tests.conftest import run_cli

# --- the target and where a fit ends ----------------------------------------------------------------


def _logp(model, point, **kwargs):
    return float(log_density(model, (), kwargs, {k: jnp.float32(v) for k, v in point.items()})[0])


def test_the_tempered_target_is_the_model_at_beta_one_scaled_by_beta_and_locked_by_the_well():
    model = REGISTRY["multimodal_2d"].model
    at_other = {"x": -3.5, "y": -3.6}
    full = _logp(model, at_other)
    assert _logp(locked_mode.tempered_target, at_other) == pytest.approx(full, rel=1e-6)
    half = _logp(locked_mode.tempered_target, at_other, beta=0.5, lock=0.0)
    assert half == pytest.approx(0.5 * full, rel=1e-6)
    # the well: zero at the start mode, deep at the other one
    locked = _logp(locked_mode.tempered_target, at_other, beta=1.0, lock=1.0)
    u1 = (at_other["x"] + at_other["y"]) / 2**0.5
    assert locked - full == pytest.approx(-0.5 * ((u1 - 5.0) / 0.5) ** 2, rel=1e-5)
    start = locked_mode.START
    assert _logp(locked_mode.tempered_target, start, lock=1.0) == pytest.approx(
        _logp(model, start), rel=1e-6)


def test_the_betas_rise_geometrically_to_exactly_one():
    betas = locked_mode.SCHEDULES["quick"].betas()
    assert betas[0] == pytest.approx(0.01) and betas[-1] == 1.0 and np.all(np.diff(betas) > 0)


def test_mode_shares_and_places():
    u2 = np.zeros(10)
    plus = np.full(10, 5.0)
    x, y = (plus + u2) / 2**0.5, (plus - u2) / 2**0.5
    start, other = locked_mode.mode_shares(np.stack([x, -x]), np.stack([y, -y]))
    assert start.tolist() == [1.0, 0.0] and other.tolist() == [0.0, 1.0]
    assert place(0.5, 0.5) == BOTH and place(0.95, 0.05) == START
    assert place(0.0, 0.99) == OTHER and place(0.02, 0.03) == NEITHER


def test_the_finding_needs_disjoint_wilson_intervals():
    assert beyond_noise((0.6, 0.95), (0.0, 0.3)) == FREES
    assert beyond_noise((0.0, 0.3), (0.6, 0.95)) == HURTS
    assert beyond_noise((0.2, 0.7), (0.0, 0.3)) == SAME


# --- the table and the answer -----------------------------------------------------------------------


def _rows(ends: dict[tuple[str, str], list[tuple[float, float]]]) -> pd.DataFrame:
    """Ok rows per (guide, variant): one (start share, other share) per seed; W1 small when both
    modes are covered."""
    out = []
    for (method, variant), shares in ends.items():
        for seed, (s, o) in enumerate(shares):
            both = s >= 0.1 and o >= 0.1
            out.append({"model": "multimodal_2d", "method": method, "variant": variant,
                        "seed": seed, "status": "ok", "error": "", "start_mode_share": s,
                        "other_mode_share": o, "w1_max": 0.05 if both else 0.85,
                        "w1_max_floor": 0.08, "verdict": "pass" if both else "fail",
                        "num_steps": 3000, "run_s": 0.5, "stage_loss": 1.0,
                        "trajectory": json.dumps([[0.01, 2.0, 4.0, 0.6, 0.0],
                                                  [1.0, 1.0, 0.1, 0.5, 0.5]])})
    return pd.DataFrame(out)


def test_tempering_frees_a_guide_only_beyond_the_binomial_noise():
    rows = _rows({
        ("autoiaf", "tempered"): [(0.5, 0.5)] * 10,
        ("autoiaf", "direct"): [(0.99, 0.0)] * 9 + [(0.0, 0.99)],
        ("autonormal", "tempered"): [(0.99, 0.0)] * 6 + [(0.0, 0.99)] * 4,
        ("autonormal", "direct"): [(0.99, 0.0)] * 10,
    })
    d = derive(rows)
    iaf = d[d.method == "autoiaf"].set_index("variant")
    assert iaf.loc["tempered", "finding"] == FREES and iaf.loc["tempered", "n_both"] == 10
    assert iaf.loc["direct", "n_start"] == 9 and iaf.loc["direct", "n_other"] == 1
    assert iaf.loc["direct", "n_left_start"] == 1
    normal = d[d.method == "autonormal"].set_index("variant")
    assert normal.loc["tempered", "finding"] == SAME  # left the start mode, but to the other one
    assert normal.loc["tempered", "n_left_start"] == 4 and normal.loc["tempered", "n_both"] == 0
    text = answer(d)
    assert text.startswith('The document (000): "your multimodal distributions get locked into '
                           'a specific mode')
    assert "; the data agree for those guides." in text
    assert ("From a start locked in one of two equal modes, tempering (beta rising "
                           "to 1) covers both modes for more seeds than a direct fit with the "
                           "same steps, beyond the binomial noise (disjoint 95% Wilson "
                           "intervals), for 1 of 2 guides (autoiaf).") in text
    assert "autonormal (3000 steps each): tempered covers both modes for 0 of 10 seeds" in text
    assert "stays in the start mode for 6, moves to the other for 4" in text
    assert "autoiaf (3000 steps each): tempered covers both modes for 10 of 10 seeds (95% " \
           "Wilson 0.72-1)" in text
    assert "W1 0.05 ± 0 reference sd (noise floor 0.08), 10 of 10 pass" in text
    STUDIES["locked_mode"].figure(rows, d)  # draws from the same rows


def test_covering_both_modes_with_a_worse_fit_is_not_freeing():
    """A broad q straddling both modes covers them in every seed yet agrees worse than the
    direct fits: the finding says so, and the answer does not claim the data agree."""
    rows = _rows({("automvn", "tempered"): [(0.5, 0.5)] * 10,
                  ("automvn", "direct"): [(0.99, 0.0)] * 10})
    tempered = rows[(rows.method == "automvn") & (rows.variant == "tempered")].index
    rows.loc[tempered, "w1_max"] = 1.39 + 0.01 * np.arange(10)  # worse than direct's 0.85
    d = derive(rows)
    assert set(d.finding) == {COVERS_WORSE}
    text = answer(d)
    assert "the data do not show it for any guide" in text
    assert "For automvn it covers both more often but agrees worse" in text


def test_failed_runs_are_counted_and_named():
    rows = _rows({("autoiaf", "tempered"): [(0.5, 0.5)], ("autoiaf", "direct"): [(0.99, 0.0)]})
    rows.loc[rows.variant == "direct", ["status", "error"]] = ["failed", "non-finite draws"]
    text = answer(derive(rows))
    assert "direct covers both modes for 0 of 1 seeds" in text
    assert "1 failed (non-finite draws)" in text
    assert "the data do not show it for any guide" in text
    assert answer(pd.DataFrame()) == "No runs of this study are in the results."


# --- end to end -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_smoke_study_runs_writes_its_table_and_resumes_without_rerunning(smoke_studies):
    out, proc = smoke_studies.out, smoke_studies.run("locked_mode")
    sched, scope = locked_mode.SCHEDULES["smoke"], locked_mode.SCOPES["smoke"]
    assert f"locked_mode: autonormal tempering stage {sched.n_stages}/{sched.n_stages} beta 1 " \
        in proc.stderr, proc.stderr[-2000:]
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "locked_mode"]
    assert len(rows) == len(scope.methods) * scope.seeds * 2
    assert set(rows.status) == {"ok"} and rows.study_program.all()
    assert np.isfinite(rows.w1_max).all() and np.isfinite(rows.w1_max_floor).all()
    assert rows.start_mode_share.between(0, 1).all()
    tempered = rows[rows.variant == "tempered"].set_index("seed").sort_index()
    direct = rows[rows.variant == "direct"].set_index("seed").sort_index()
    assert (tempered.num_steps == direct.num_steps).all()  # the same steps each
    assert all(len(json.loads(t)) == sched.n_stages for t in tempered.trajectory)
    table = pd.read_parquet(out / "studies" / "locked_mode.parquet")
    assert sorted(table.variant) == ["direct", "tempered"]
    assert STUDIES["locked_mode"].answer(table.drop(columns="profile")) in proc.stdout
    before = rows.set_index(["method", "seed", "settings_hash"]).started_at.sort_index()
    proc = run_cli("study", "locked_mode", "--profile", "smoke", "--out", str(out), "--resume",
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    after = pd.read_parquet(out / "results.parquet")
    after = after[after.study == "locked_mode"].set_index(
        ["method", "seed", "settings_hash"]).started_at.sort_index()
    pd.testing.assert_series_equal(before, after)
