"""The anytime study: checkpoint schedule, crossover on hand-made curves, checkpoint draws equal
an ordinary fit, and the smoke run end to end with resume."""

from __future__ import annotations

import jax
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.inference import anytime as programs
from svi_bench.benchmarks.inference import methods
from svi_bench.benchmarks.inference.settings import SVISettings
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
    guide = methods.guide_factory(spec, "autonormal", {})
    sites = ("latent_fairness",)
    key = jax.random.PRNGKey(3)
    (_, draws), _, _ = programs.run_svi(spec.model, guide, settings, [8, 16, 32], sites, key, data)
    plain = programs.ordinary_fit(spec.model, guide, settings, 32, sites, key, data)
    for s in sites:
        np.testing.assert_allclose(draws[-1][s], plain[s], rtol=1e-5, atol=1e-6)


def test_smoke_end_to_end_and_resume(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("study", "anytime", "--profile", "smoke", "--out", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    rows = pd.read_parquet(out / "results.parquet")
    rows = rows[rows.study == "anytime"]
    assert (rows.status == "ok").all() and rows.checkpoint.nunique() > 3
    assert {"grad_evals", "checkpoint_run_s", "w1_max", "floor"} <= set(rows.columns)
    table = pd.read_parquet(out / "studies" / "anytime.parquet")
    assert set(table.method) == {"autonormal", "automvn"}
    before = len(pd.read_parquet(out / "results.parquet"))
    again = run_cli("study", "anytime", "--profile", "smoke", "--out", str(out), "--resume",
                    "--no-progress")
    assert again.returncode == 0, again.stderr
    assert len(pd.read_parquet(out / "results.parquet")) == before
