"""The grid on Dask: the same rows as the serial run, timed runs under the host lock, a worker that
dies twice is a failed row and the grid goes on."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.grid import distributed as grid_dask
from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.execution import run_grid
from svi_bench.benchmarks.grid.run_spec import plan
from svi_bench.benchmarks.inference import host_lock, jax_setup, program_cost
from svi_bench.models import REGISTRY, Dataset, ModelSpec

jax_setup.configure_jax()

#: Columns that may differ between a serial and a parallel run of the same grid: timings, how
#: busy the host was meanwhile, where the executable came from, when, and the worker set-up.
#: The posterior predictive check's numbers: the reference's replicated data are made on whichever
#: process scores a model first, and differ from the serial run's in the last bits (seen: equal to
#: 8 printed digits); they must agree to float32 round-off, not bit for bit.
PREDICTIVE = {"ppc_w1", "ppc_w1_floor"}
TIMING = {"compile_s", "run_s", "program_run_s", "cache_hit", "cache", "started_at",
          "ess_per_second", "jobs", "artifact", "timing_lock", "lock_wait_s",
          "host_others_share", "contended",
          # the state of the process that ran it, not of the run (XLA's static figures are
          # compared: they must agree)
          *program_cost.PROCESS_STATE}
KEY = ["model", "method", "seed"]


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _doomed_data(seed: int) -> Dataset:
    """Kills its process when called on a Dask worker (a worker dying mid-cell); fine elsewhere."""
    if _in_dask_worker():
        os._exit(3)
    return REGISTRY["coin"].data(seed)


DOOMED = ModelSpec(name="doomed", description="its worker dies", source="tests",
                   model=REGISTRY["coin"].model, data=_doomed_data, guides={},
                   reference_kind="exact")


@pytest.fixture(scope="module")
def scheduler():
    """One 2-worker LocalCluster for this module (set up as ``--jobs 2`` sets it up)."""
    with grid_dask.local_cluster(2) as cluster:
        yield cluster.scheduler_address


def _grid(out, specs, methods, **kwargs) -> pd.DataFrame:
    cells = list(plan(specs, methods, [0], "smoke"))
    run_grid(cells, store.ResultsStore(out), **kwargs)
    return pd.read_parquet(out / "results.parquet").sort_values(KEY).reset_index(drop=True)


@pytest.mark.slow
def test_a_two_worker_cluster_gives_the_serial_rows(tmp_path, scheduler):
    # a float64 model among float32 ones: its precision must not leak to the next cell on a worker
    coin64 = dataclasses.replace(REGISTRY["coin"], name="coin_float64", precision="float64")
    specs = [REGISTRY["coin"], coin64, REGISTRY["gamma_concentration"]]
    serial = _grid(tmp_path / "serial", specs, ["nuts", "autonormal"])
    parallel = _grid(tmp_path / "dask", specs, ["nuts", "autonormal"], scheduler=scheduler)
    assert len(serial) == len(parallel) == 6
    assert (parallel.precision == np.where(parallel.model == "coin_float64", "float64",
                                           "float32")).all()
    assert list(serial[KEY].itertuples(index=False)) == list(parallel[KEY].itertuples(index=False))
    assert (parallel.status == "ok").all(), parallel.error.tolist()
    assert serial.columns.difference(parallel.columns).empty
    for col in serial.columns.difference(sorted(TIMING)):
        a, b = serial[col], parallel[col]
        if col in PREDICTIVE:  # replicated on another process: equal to float32 round-off
            np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), rtol=1e-6, err_msg=col)
        elif pd.api.types.is_float_dtype(a):
            assert np.array_equal(a.to_numpy(), b.to_numpy(), equal_nan=True), col
        else:
            assert a.astype(str).tolist() == b.astype(str).tolist(), col
    assert (serial.jobs == 1).all() and (~serial.timing_lock).all()
    assert (parallel.jobs == 2).all() and parallel.timing_lock.all()
    assert (parallel.lock_wait_s >= 0).all()
    assert sorted(p.name for p in (tmp_path / "dask" / "references").glob("*.json")) == sorted(
        p.name for p in (tmp_path / "serial" / "references").glob("*.json"))


@pytest.mark.slow
def test_a_worker_that_dies_twice_is_a_failed_row_and_the_grid_goes_on(tmp_path, scheduler):
    df = _grid(tmp_path, [DOOMED, REGISTRY["coin"]], ["autonormal"], score=False,
               scheduler=scheduler)
    doomed, coin = df[df.model == "doomed"], df[df.model == "coin"]
    assert doomed.status.tolist() == ["failed"]
    assert doomed.error.iloc[0].startswith("worker died twice: KilledWorker")
    assert coin.status.tolist() == ["ok"]


def test_resume_on_the_cluster_skips_done_runs(tmp_path, scheduler):
    first = _grid(tmp_path, [REGISTRY["coin"]], ["autonormal"], score=False, scheduler=scheduler)
    again = _grid(tmp_path, [REGISTRY["coin"]], ["autonormal"], score=False, scheduler=scheduler,
                  resume=True)
    assert again.started_at.tolist() == first.started_at.tolist()


def test_the_cluster_runs_with_hash_seed_zero_and_the_lock_on(scheduler):
    from distributed import Client

    with Client(scheduler) as client:
        facts = client.run(lambda: (os.environ.get("PYTHONHASHSEED"), host_lock.active()))
    assert set(facts.values()) == {("0", True)}


def test_the_timing_lock_excludes_another_process_only_when_active(tmp_path, monkeypatch):
    monkeypatch.setenv("SVI_BENCH_CACHE", str(tmp_path))
    probe = ("import fcntl, sys; f = open(sys.argv[1], 'a')\n"
             "try: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB); print('free')\n"
             "except BlockingIOError: print('held')")

    def other_process_sees() -> str:
        return subprocess.run([sys.executable, "-c", probe, str(host_lock.lock_path())],
                              capture_output=True, text=True, check=True).stdout.strip()

    monkeypatch.delenv(host_lock.ENV, raising=False)
    with host_lock.timed_section():
        assert not host_lock.lock_path().exists()
    monkeypatch.setenv(host_lock.ENV, "1")
    before = host_lock.stats()
    with host_lock.timed_section():
        assert other_process_sees() == "held"
    assert other_process_sees() == "free"
    assert host_lock.stats().sections == before.sections + 1
    assert host_lock.lock_path().parent == tmp_path / "locks"


def test_a_timed_run_waits_for_other_workers_work_and_pauses_it(tmp_path, monkeypatch):
    """Workers hold the lock shared while they work: another worker's work does not block this
    one's work, but the timed section is exclusive (it excludes a worker's shared lock too)."""
    monkeypatch.setenv("SVI_BENCH_CACHE", str(tmp_path))
    monkeypatch.setenv(host_lock.ENV, "1")
    probe = ("import fcntl, sys; f = open(sys.argv[1], 'a')\n"
             "try: fcntl.flock(f, getattr(fcntl, sys.argv[2]) | fcntl.LOCK_NB); print('got')\n"
             "except BlockingIOError: print('blocked')")

    def other_worker(mode: str) -> str:
        return subprocess.run([sys.executable, "-c", probe, str(host_lock.lock_path()), mode],
                              capture_output=True, text=True, check=True).stdout.strip()

    with host_lock.working():
        assert other_worker("LOCK_SH") == "got"  # compiles overlap
        assert other_worker("LOCK_EX") == "blocked"  # another's timed run waits for this work
        with host_lock.timed_section():
            assert other_worker("LOCK_SH") == "blocked"  # other work pauses while this is timed
        assert other_worker("LOCK_SH") == "got"
    assert other_worker("LOCK_EX") == "got"


def test_jobs_and_scheduler_together_are_refused(tmp_path):
    from conftest import run_cli

    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--jobs", "2",
                   "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: give --jobs (a local cluster) or --scheduler (an existing one), not both"]


@pytest.mark.slow
def test_run_without_jobs_starts_a_worker_per_core_and_says_how_the_time_went(tmp_path):
    from conftest import run_cli

    from svi_bench.benchmarks.grid.execution import JOBS_ENV, usable_cores

    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--methods",
                   "autonormal,autodiagonalnormal", "--out", str(tmp_path), "--no-progress",
                   env={JOBS_ENV: ""})  # as a user's shell: no default set
    assert proc.returncode == 0, proc.stderr[-2000:]
    workers = min(usable_cores(), 2)
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert (df.status == "ok").all() and (df.jobs == workers).all()
    assert df.timing_lock.all() == (workers > 1)
    summary = proc.stdout.strip().splitlines()[-2]
    assert summary.startswith(f"{workers} workers, compiles overlapped" if workers > 1
                              else "serial:"), summary
    assert " s compiling (" in summary and " s wall" in summary


def test_a_bad_default_worker_count_is_refused_in_one_line(tmp_path):
    from conftest import run_cli

    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--out", str(tmp_path),
                   env={"SVI_BENCH_JOBS": "lots"})
    assert proc.returncode == 2
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: SVI_BENCH_JOBS='lots'; valid: an integer"), err
    assert not (tmp_path / "results.parquet").exists()


@contextlib.contextmanager
def _listener(answer: bytes | None):
    """A local TCP listener that answers every request with ``answer`` (None: never answers)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer is not None:
                conn.recv(65536)
                conn.sendall(answer)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"tcp://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


def _refused_quickly(argv, capsys, *words, within_s=20.0):
    from svi_bench.benchmarks import cli

    start = time.monotonic()
    assert cli.main(argv) == 2
    assert time.monotonic() - start < within_s
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for word in words:
        assert word in err, (word, err)


RUN_COIN = ["run", "--profile", "smoke", "--models", "coin", "--methods", "nuts", "--no-progress"]


@pytest.mark.parametrize("address", ["foo", "http://127.0.0.1:8787", "tcp://127.0.0.1",
                                     "tcp://127.0.0.1:notaport", "tcp://:8786", ""])
def test_a_scheduler_address_of_the_wrong_form_is_refused_before_any_work(tmp_path, capsys,
                                                                          address):
    _refused_quickly([*RUN_COIN, "--scheduler", address, "--out", str(tmp_path / "out")], capsys,
                     f"--scheduler {address!r}", "not a Dask scheduler address",
                     "valid: tcp://HOST:PORT", within_s=10)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("answer, words", [
    (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n" * 4,
     ["--scheduler tcp://", "no Dask scheduler"]),
    (None, ["--scheduler tcp://", "no Dask scheduler answered within 2 s", "SVI_BENCH_SCHEDULER_TIMEOUT"]),
])
def test_a_listener_that_is_no_scheduler_is_refused_within_the_timeout(tmp_path, capsys,
                                                                       monkeypatch, answer, words):
    """An HTTP server or a listener that never answers: one line, within the stated timeout,
    and the rows already in the folder stay."""
    monkeypatch.setenv("SVI_BENCH_SCHEDULER_TIMEOUT", "2")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("keep me")
    with _listener(answer) as address:
        _refused_quickly([*RUN_COIN, "--scheduler", address, "--out", str(out)], capsys, *words,
                         within_s=6)
    assert [p.name for p in out.iterdir()] == ["results.csv"]  # refused before any work
    assert (out / "results.csv").read_text() == "keep me"


def test_a_bad_scheduler_timeout_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SVI_BENCH_SCHEDULER_TIMEOUT", "soon")
    _refused_quickly([*RUN_COIN, "--scheduler", "tcp://127.0.0.1:8786", "--out", str(tmp_path)],
                     capsys, "SVI_BENCH_SCHEDULER_TIMEOUT", "valid")


def test_a_real_scheduler_answers_the_probe():
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, dashboard_address=None, processes=False) as cluster:
        grid_dask.probe_scheduler(cluster.scheduler_address, 5.0)
