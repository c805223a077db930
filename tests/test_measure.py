"""The suite's own timings are records written by a command (``benchmarks.measure``), never
figures typed into prose."""

from __future__ import annotations

import json
import sys

from svi_bench.benchmarks import measure


def test_time_writes_a_record_of_machine_commit_command_and_figures(tmp_path, capsys):
    code = measure.main(["--out", str(tmp_path), "time", "probe", "--", sys.executable, "-c",
                         "pass"])
    assert code == 0
    (path,) = tmp_path.glob("probe-*.json")
    assert capsys.readouterr().out.strip() == str(path)
    record = json.loads(path.read_text())
    assert record["name"] == "probe" and record["command"] == [sys.executable, "-c", "pass"]
    assert record["commit"] and record["machine"]["cpus"] and record["recorded_at"]
    assert 0 < record["figures"]["wall_s"] < 60


def test_a_failed_command_writes_no_record(tmp_path, capsys):
    code = measure.main(["--out", str(tmp_path), "time", "probe", "--", sys.executable, "-c",
                         "import sys; sys.exit('boom')"])
    assert code == 1 and not list(tmp_path.iterdir())
    assert "exited 1: boom; no record written" in capsys.readouterr().err


def test_model_costs_count_each_cells_program_once_and_unhealthy_chains(tmp_path):
    import pandas as pd

    rows = [
        # NUTS: one program for its 2 seeds (compile_s on both rows), one seed's chains too short
        dict(model="m", method="nuts", family="mcmc", status="ok", compile_s=10.0, run_s=2.0,
             max_rhat=1.0, min_ess_bulk=50.0, min_ess_tail=500.0, divergences=0),
        dict(model="m", method="nuts", family="mcmc", status="ok", compile_s=10.0, run_s=3.0,
             max_rhat=1.0, min_ess_bulk=900.0, min_ess_tail=900.0, divergences=0),
        dict(model="m", method="g", family="vi", status="failed", compile_s=4.0, run_s=None),
        dict(model="n", method="g", family="vi", status="ok", compile_s=1.0, run_s=0.5),
    ]
    pd.DataFrame(rows).to_parquet(tmp_path / "results.parquet")
    costs = measure.model_costs(tmp_path)
    assert costs["m"] == {"runs": 3, "ok": 2, "compile_s": 14.0, "run_s": 5.0, "mcmc_runs": 2,
                          "mcmc_unhealthy": 1}
    assert costs["n"] == {"runs": 1, "ok": 1, "compile_s": 1.0, "run_s": 0.5, "mcmc_runs": 0,
                          "mcmc_unhealthy": 0}
