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
