"""NUTS draw cost: ``NUTS_DRAWS[model]`` sample steps of ``NUTS_CHAINS`` warmed-up chains per round.

The warm-up (smoke profile length) runs once, untimed; each round starts from the warmed-up state
with a fresh key. ``grad_evals`` (leapfrog steps of the untimed seed-0 sampling call),
``grad_evals_warmup`` and ``divergences`` are deterministic for the fixed seed and gated strictly;
the compile time, cache and host load of both programs (``thresholds.COMPILES``) are recorded.
Each case runs once per pass (``perf_pass``); passes share the program.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from svi_bench.benchmarks.regress.perf import programs


def _prepare(case: programs.Case) -> tuple[programs.NUTSProgram, dict]:
    spec, ds, why = programs.skip_reason(case)
    if why:
        pytest.skip(why)
    prog = programs.nuts_program(spec, ds.model_kwargs)
    state, (num_steps, diverging, accept) = jax.block_until_ready(
        prog.run(prog.fresh_state(programs.FIGURE_SEED))
    )
    assert programs.finite_tree(state.z), "non-finite NUTS state"
    s = prog.settings
    figures = dict(
        kind="nuts", model=case.model, method=case.method, draws=prog.draws,
        chains=programs.NUTS_CHAINS, num_warmup=s.num_warmup,
        grad_evals=int(np.sum(num_steps)), grad_evals_warmup=prog.grad_evals_warmup,
        divergences=int(np.sum(diverging)), accept_prob_mean=float(np.mean(accept)),
        cache_hit=prog.cache_hit, **programs.compile_figures(prog.compiles),
        **programs.static_figures(prog.run),
    )
    return prog, figures


def test_nuts_draws(benchmark, nuts_case: str, perf_pass: int, rounds: int) -> None:
    case = programs.Case.parse(nuts_case)
    prog, figures = programs.cached(("nuts", nuts_case), lambda: _prepare(case))
    programs.time_rounds(benchmark, "nuts", f"test_nuts_draws[{case.id}]", figures, perf_pass,
                         rounds, lambda st: jax.block_until_ready(prog.run(st)), prog.fresh_state)
