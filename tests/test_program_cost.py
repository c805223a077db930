"""XLA's static cost of a compiled program and the process's peak memory over a run, on known
answers: a matrix product's flops, an allocation's peak."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svi_bench.benchmarks.inference import executables, program_cost


def _matmul(x):
    return jnp.sin(x) @ x.T


def test_static_cost_counts_a_matrix_product_and_its_buffers():
    x = jnp.ones((100, 100), dtype=jnp.float32)
    cost = program_cost.static_cost(jax.jit(_matmul).lower(x).compile())
    assert cost["xla_flops"] == 2 * 100 ** 3  # a multiply and an add per (i, j, k)
    assert cost["xla_transcendentals"] == 100 * 100  # one sin per element
    assert cost["xla_argument_bytes"] == cost["xla_output_bytes"] == 4 * 100 * 100
    bigger = program_cost.static_cost(jax.jit(_matmul).lower(jnp.ones((200, 200))).compile())
    assert bigger["xla_flops"] == 8 * cost["xla_flops"]


def test_an_executable_without_analyses_gives_nan_not_an_error():
    cost = program_cost.static_cost(object())
    assert set(cost) == set(program_cost.STATIC_COLUMNS)
    assert all(math.isnan(v) for v in cost.values())


@pytest.mark.skipif(not program_cost._CLEAR_REFS.exists(), reason="Linux /proc only")
def test_peak_memory_sees_an_allocation_made_and_freed_inside_the_block():
    with program_cost.PeakMemory() as small:
        np.ones(1000).sum()
    with program_cost.PeakMemory() as big:
        block = np.ones(50_000_000)  # 400 MB, touched
        block.sum()
        del block
    assert big.columns()["rss_growth_bytes"] > 300e6
    assert small.columns()["rss_growth_bytes"] < 50e6
    assert big.columns()["peak_rss_bytes"] >= big.columns()["rss_growth_bytes"]


def test_compile_and_run_reports_the_same_static_cost_cold_and_loaded(tmp_path, monkeypatch):
    """A stored executable loaded by a warm run gives the figures its cold compile gave: the gate
    can compare them exactly across runs."""
    monkeypatch.setenv("SVI_BENCH_CACHE", str(tmp_path))
    x = jnp.ones((64, 64), dtype=jnp.float32)
    identity = {"test": "program_cost", "run": str(tmp_path)}  # stored by no earlier run
    cold = executables.compile_and_run(jax.jit(_matmul), x, identity=identity)
    warm = executables.compile_and_run(jax.jit(_matmul), x, identity=identity)
    assert warm.cache == "executable" and cold.cache != "executable"
    for column in program_cost.STATIC_COLUMNS:
        assert cold.cost[column] == warm.cost[column] or (
            math.isnan(cold.cost[column]) and math.isnan(warm.cost[column])), column
    assert cold.cost["xla_flops"] == 2 * 64 ** 3
    assert set(cold.cost) == set(program_cost.COLUMNS)  # the compile's host load too
    np.testing.assert_allclose(cold.out, warm.out)
