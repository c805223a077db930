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
# `svi-bench run` starts a Dask worker per core unless told; the tests that run it do so beside
# other tests (pytest-xdist), so they run serially unless they ask for workers (--jobs)
os.environ.setdefault("SVI_BENCH_JOBS", "1")


CONSOLE = Path(sys.executable).parent / "svi-bench"

#: Session fixtures that run a whole grid or every study: under pytest-xdist (``nox -s tests``
#: runs ``-n``) the tests that use one share an ``xdist_group``, so it runs once, on one worker.
SHARED_RUNS = ("smoke_results", "smoke_studies", "contender_results")
#: The field's contenders (BlackJAX, FlowJAX) run on a smoke grid of their own, on four models,
#: while the classic grid (NUTS and NumPyro's guides on every model) runs on another worker: one
#: grid of every method on every model took 609 s of CI's 985 s of tests. Each contender ran at
#: smoke on every model when it was added (issue 26's note); here two models show its rows.
CONTENDERS = ("pathfinder", "multipathfinder", "mclmc", "mams", "flow:rqs")
CONTENDER_MODELS = ("coin", "correlated_gaussian")
"""A one-dimensional model (where three of them cannot run) and an exact correlated Gaussian."""


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        shared = [name for name in SHARED_RUNS if name in getattr(item, "fixturenames", ())]
        if shared:
            item.add_marker(pytest.mark.xdist_group(shared[0]))


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
                   "--skip-methods", ",".join(CONTENDERS), "--no-progress",
                   env={"SVI_BENCH_TIMING_LOCK": "0"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def contender_results(tmp_path_factory) -> Path:
    """The contenders (``CONTENDERS``) on ``CONTENDER_MODELS`` at smoke, one seed, serially."""
    out = tmp_path_factory.mktemp("contenders")
    proc = run_cli("run", "--profile", "smoke", "--seeds", "1", "--out", str(out),
                   "--models", ",".join(CONTENDER_MODELS), "--methods", ",".join(CONTENDERS),
                   "--no-progress")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


class SmokeStudies:
    """Studies at smoke through the command line into one results folder, each run at most once
    per test session: a study's own end-to-end test and the report's study pages read the same
    run (``run(name)`` runs it on first use and returns its completed process)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self._procs: dict[str, subprocess.CompletedProcess] = {}

    def run(self, name: str) -> subprocess.CompletedProcess:
        if name not in self._procs:
            # progress on (stderr): the annealing test reads its stage lines there
            proc = run_cli("study", name, "--profile", "smoke", "--out", str(self.out),
                           env={"SVI_BENCH_TIMING_LOCK": "0"})
            assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
            self._procs[name] = proc
        return self._procs[name]


@pytest.fixture(scope="session")
def smoke_studies(tmp_path_factory) -> SmokeStudies:
    """The session's one folder of smoke studies (see ``SmokeStudies``)."""
    return SmokeStudies(tmp_path_factory.mktemp("studies") / "res")
