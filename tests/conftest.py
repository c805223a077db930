"""Shared fixtures: the smoke grid is run once per test session through the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("PYTHONHASHSEED", "0")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("MPLBACKEND", "Agg")


CONSOLE = Path(sys.executable).parent / "svi-bench"


def run_cli(*args: str, cwd: Path | None = None,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``svi-bench ARGS`` (the installed console command) in a subprocess, as a user runs it."""
    return subprocess.run([str(CONSOLE), *args], capture_output=True, text=True, cwd=cwd or REPO,
                          timeout=1800, env={**os.environ, **(env or {})})


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory) -> Path:
    """Results of the whole smoke grid (all models, all methods, one seed).

    Set SVI_BENCH_SMOKE_RESULTS to an existing folder to reuse it while developing.
    """
    reuse = os.environ.get("SVI_BENCH_SMOKE_RESULTS")
    if reuse and (Path(reuse) / "results.parquet").exists():
        return Path(reuse)
    out = tmp_path_factory.mktemp("smoke")
    # throughput over honest timings here (no test reads them): compiles never pause for a run
    proc = run_cli("run", "--profile", "smoke", "--seeds", "1", "--jobs", "2", "--out", str(out),
                   "--no-progress", env={"SVI_BENCH_TIMING_LOCK": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
