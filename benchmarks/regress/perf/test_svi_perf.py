"""SVI step cost: ``SVI_STEPS[model]`` compiled ``svi.update`` steps per round, compile excluded.

Figures in ``extra_info`` (compared by ``benchmarks.regress``): ``grad_evals`` (steps x particles,
x K for AutoDAIS) and ``final_loss`` of the untimed seed-0 call are deterministic and gated
strictly; ``compile_s`` (getting the timed program: compiled, or loaded from the executable
cache when warm), the ``cache`` that served it and the host's load meanwhile
(``compile_others_share``), and the same for the init program, are recorded, not gated. Each
case runs once per pass (``perf_pass``); passes share the program.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from svi_bench.benchmarks.regress.perf import programs


def _prepare(case: programs.Case) -> tuple[programs.SVIProgram, dict]:
    spec, ds, why = programs.skip_reason(case)
    if why:
        pytest.skip(why)
    prog = programs.svi_program(spec, case.method, ds.model_kwargs)
    state, losses = jax.block_until_ready(prog.run(prog.fresh_state(programs.FIGURE_SEED)))
    losses = np.asarray(losses)
    assert np.all(np.isfinite(losses)), f"{np.sum(~np.isfinite(losses))} non-finite losses"
    assert programs.finite_tree(state.optim_state), "non-finite guide parameters"
    s = prog.settings
    figures = dict(
        kind="svi", model=case.model, method=case.method, steps=s.num_steps,
        particles=s.num_particles, learning_rate=s.learning_rate, grad_evals=prog.grad_evals,
        final_loss=float(losses[-1]), cache_hit=prog.cache_hit,
        **programs.compile_figures(prog.compiles),
        **programs.static_figures(prog.run),
    )
    return prog, figures


def test_svi_steps(benchmark, svi_case: str, perf_pass: int, rounds: int) -> None:
    case = programs.Case.parse(svi_case)
    prog, figures = programs.cached(("svi", svi_case), lambda: _prepare(case))
    programs.time_rounds(benchmark, "svi", f"test_svi_steps[{case.id}]", figures, perf_pass,
                         rounds, lambda st: jax.block_until_ready(prog.run(st)), prog.fresh_state)
