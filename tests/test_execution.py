"""How many workers a grid run gets when the user does not say (``--jobs`` absent)."""

from __future__ import annotations

import pytest

from svi_bench.benchmarks.grid import execution
from svi_bench.benchmarks.grid.run_spec import plan
from svi_bench.models import REGISTRY

CELLS = list(plan([REGISTRY["coin"], REGISTRY["gamma_concentration"]], ["nuts", "autonormal"],
                  [0], "smoke"))


def test_one_worker_per_core_but_no_more_than_the_cells(monkeypatch):
    monkeypatch.setattr(execution, "usable_cores", lambda: 8)
    assert execution.default_jobs(CELLS, [], environ={}) == (4, "")
    assert execution.default_jobs(CELLS[:1], [], environ={}) == (1, "")
    monkeypatch.setattr(execution, "usable_cores", lambda: 2)
    assert execution.default_jobs(CELLS, [], environ={}) == (2, "")


def test_the_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setattr(execution, "usable_cores", lambda: 2)
    assert execution.default_jobs(CELLS, [], environ={execution.JOBS_ENV: "1"}) == (1, "")
    assert execution.default_jobs(CELLS, [], environ={execution.JOBS_ENV: "3"}) == (3, "")
    for bad in ("0", "two", "9"):
        with pytest.raises(ValueError, match=rf"SVI_BENCH_JOBS='{bad}'; valid: an integer "
                                             r"from 1 to 8"):
            execution.default_jobs(CELLS, [], environ={execution.JOBS_ENV: bad})


def test_a_users_model_runs_serially_and_says_why(monkeypatch):
    monkeypatch.setattr(execution, "usable_cores", lambda: 2)
    jobs, why = execution.default_jobs(CELLS, ["my_model"], environ={})
    assert jobs == 1
    assert why == ("serial: worker processes cannot import my_model (user models and methods "
                   "run in this process)")
