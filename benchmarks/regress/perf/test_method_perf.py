"""Cost of the methods with a program of their own (BlackJAX's Pathfinder and MCLMC, FlowJAX's
flow, a user's): one seed of the method's whole cell program per round at the smoke profile,
compile excluded (the first, untimed call gets the executable; every round reuses it).

Figures in ``extra_info`` (compared by ``benchmarks.regress``): ``grad_evals``, ``divergences``
(where the method has them) and ``draws_mean`` (the mean of every draw of the untimed seed-0
call) are deterministic for the fixed seed and gated strictly; ``compile_s``, its ``cache`` and
the host's load meanwhile (``compile_others_share``) are recorded, not gated. Each case runs
once per pass (``perf_pass``); passes share the program.
"""

from __future__ import annotations

import numpy as np
import pytest

from svi_bench.benchmarks.regress.perf import programs


def _prepare(case: programs.Case) -> tuple[programs.MethodProgram, dict]:
    spec, ds, why = programs.skip_reason(case)
    if why:
        pytest.skip(why)
    prog = programs.method_program(spec, case.method, ds.model_kwargs, ds)
    first = prog.first
    draws = np.concatenate([np.asarray(v, dtype=float).ravel() for v in first.draws.values()])
    assert np.all(np.isfinite(draws)), f"{np.sum(~np.isfinite(draws))} non-finite draws"
    if first.params_finite is not None:
        assert bool(np.all(first.params_finite)), "non-finite fitted parameters"
    stats = first.sample_stats or {}
    figures = dict(
        kind="method", model=case.model, method=case.method, settings=repr(prog.settings),
        grad_evals=float(np.sum(first.grad_evals)), draws_mean=float(np.mean(draws)),
        cache_hit=first.cache_hit, **programs.compile_figures(prog.compiles),
        **programs.cost_figures(first.cost),
    )
    if stats.get("diverging") is not None:
        figures["divergences"] = int(np.sum(stats["diverging"]))
    return prog, figures


def test_method_program(benchmark, method_case: str, perf_pass: int, rounds: int) -> None:
    case = programs.Case.parse(method_case)
    prog, figures = programs.cached(("method", method_case), lambda: _prepare(case))
    programs.time_rounds(benchmark, "method", f"test_method_program[{case.id}]", figures,
                         perf_pass, rounds, prog.program, programs.MethodProgram.keys)
