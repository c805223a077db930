"""Ctrl-C (``benchmarks.interrupts``): one line, exit 130, the rows saved before it intact, at
whatever moment it comes: while starting, while a grid runs, after a cell, with Dask workers, and
when Python swallows the KeyboardInterrupt inside a callback."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import CONSOLE

from svi_bench.benchmarks import cli
from svi_bench.benchmarks.grid import execution

GRID = ["run", "--profile", "smoke", "--models", "coin", "--methods",
        "nuts,autonormal,manual:beta,manual:normal", "--no-progress"]
LINE = re.compile(r"interrupted; (\d+) rows? already saved in (.+)|interrupted before any run: "
                  r"nothing saved")


def _interrupted(out: Path, *extra: str, delay: float = 0.0, after_rows: bool = False
                 ) -> tuple[int, str]:
    """``svi-bench run`` in its own session, sent Ctrl-C as a terminal sends it (to the whole
    process group, workers included) after ``delay`` s or once the first rows are saved."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}  # as a user starts it
    proc = subprocess.Popen([str(CONSOLE), *GRID, *extra, "--out", str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    if after_rows:
        while not (out / "results.parquet").exists() and proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    time.sleep(delay)
    assert proc.poll() is None, "the run ended before Ctrl-C: nothing was tested"
    os.killpg(proc.pid, signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise
    return proc.returncode, err


def _saved_rows(err: str, out: Path) -> int:
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and LINE.fullmatch(lines[0]), err
    match = LINE.fullmatch(lines[0])
    if match.group(1) is None:
        assert not (out / "results.parquet").exists()
        return 0
    assert match.group(2) == str(out / "results.parquet")
    saved = int(match.group(1))
    if saved:
        rows = pd.read_parquet(out / "results.parquet")
        assert len(rows) == saved and (rows.status == "ok").all()
    return saved


@pytest.mark.parametrize("delay", [0.5, 2.0])
def test_ctrl_c_while_starting_is_one_line_and_130(tmp_path, delay):
    code, err = _interrupted(tmp_path / "out", delay=delay)
    assert code == 130, err
    _saved_rows(err, tmp_path / "out")


def test_ctrl_c_after_a_cell_keeps_its_rows(tmp_path):
    code, err = _interrupted(tmp_path / "out", after_rows=True, delay=0.2)
    assert code == 130, err
    assert 1 <= _saved_rows(err, tmp_path / "out") < 4


def test_ctrl_c_with_dask_workers_is_one_line(tmp_path):
    """The terminal's Ctrl-C reaches the workers too: they leave it to the client."""
    code, err = _interrupted(tmp_path / "out", "--jobs", "2", delay=8.0)
    assert code == 130, err
    _saved_rows(err, tmp_path / "out")


def test_a_swallowed_ctrl_c_still_stops_the_run(tmp_path, monkeypatch, capsys):
    """Python drops a KeyboardInterrupt raised in a callback ("Exception ignored in
    _xla_gc_callback"): the run must stop all the same, not end with rc 0."""
    class Callback:
        def __del__(self):  # the signal's handler runs in here, its exception is dropped
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):
                pass

    def run_grid(cells, results, **kwargs):
        Callback()
        results.add([])

    monkeypatch.setattr(execution, "run_grid", run_grid)
    before = signal.getsignal(signal.SIGINT)  # (an xdist worker ignores SIGINT)
    code = cli.main([*GRID, "--methods", "nuts", "--out", str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 130 and "0 ok" not in out
    assert err.strip() == f"interrupted; 0 rows already saved in {tmp_path / 'out'}/results.parquet"
    assert signal.getsignal(signal.SIGINT) is before  # handler given back
