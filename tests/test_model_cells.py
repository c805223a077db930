"""The serial grid completes a cell's rows on a background thread: same rows as in order, and
never beside a timed run or model code (``model_cells.run_cells_overlapped``, ``host_lock``)."""

from __future__ import annotations

import threading
import time

import pandas as pd

from svi_bench.benchmarks.grid import runner, store
from svi_bench.benchmarks.grid.execution import run_grid
from svi_bench.benchmarks.grid.model_cells import run_model_cells
from svi_bench.benchmarks.grid.run_spec import plan
from svi_bench.benchmarks.inference import host_lock, jax_setup, program_cost
from svi_bench.models import get_model

jax_setup.configure_jax()

TINY = {"num_steps": 60, "num_draws": 200, "final_elbo_particles": 40,
        "num_warmup": 30, "num_samples": 40, "num_chains": 2}
TIMING = {"compile_s", "run_s", "program_run_s", "cache", "cache_hit", "started_at",
          "host_others_share", "contended", "ess_per_second", "lock_wait_s", "timing_lock", "jobs",
          *program_cost.PROCESS_STATE}


def _cells():
    return list(plan([get_model("coin")], ["autonormal", "nuts", "autodiagonalnormal"], [0, 1],
                     "smoke", TINY))


def _comparable(rows: pd.DataFrame) -> pd.DataFrame:
    keep = [c for c in rows.columns if c not in TIMING]
    return rows[keep].sort_values(["method", "seed"]).reset_index(drop=True)


def test_overlapped_serial_grid_gives_the_rows_of_the_plain_order(tmp_path):
    overlapped = store.ResultsStore(tmp_path / "a")
    run_grid(_cells(), overlapped)
    plain = store.ResultsStore(tmp_path / "b")
    for _, rows in run_model_cells(_cells(), tmp_path / "b"):
        plain.add(rows)
    a = _comparable(pd.read_parquet(tmp_path / "a" / "results.parquet"))
    b = _comparable(pd.read_parquet(tmp_path / "b" / "results.parquet"))
    assert len(a) == 6 and set(a.status) == {"ok"} and a.verdict.notna().all()
    pd.testing.assert_frame_equal(a, b)


def test_no_timed_run_or_tracing_overlaps_the_background_completion(tmp_path, monkeypatch):
    spans: dict[str, list[tuple[float, float]]] = {"finish": [], "timed": [], "foreground": []}
    threads: set[str] = set()

    def recorded(kind, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                time.sleep(0.5)  # long enough to reach into the next cell's timed run if let
                return fn(*args, **kwargs)
            finally:
                spans[kind].append((start, time.perf_counter()))
                threads.add(threading.current_thread().name)
        return wrapper

    monkeypatch.setattr(runner, "finish_rows", recorded("finish", runner.finish_rows))
    real_foreground = host_lock.foreground

    def timed_foreground():
        cm = real_foreground()
        entered: list[float] = []

        class Span:
            def __enter__(self):
                out = cm.__enter__()
                entered.append(time.perf_counter())
                return out

            def __exit__(self, *exc):
                spans["foreground"].append((entered[0], time.perf_counter()))
                return cm.__exit__(*exc)
        return Span()

    monkeypatch.setattr(host_lock, "foreground", timed_foreground)
    run_grid(_cells(), store.ResultsStore(tmp_path))
    assert len(spans["finish"]) == 3 and any(n.startswith("svi-bench-finish") for n in threads)
    assert len(spans["foreground"]) >= 3  # every timed run at least, and the tracing
    for f0, f1 in spans["finish"]:
        for t0, t1 in spans["foreground"]:
            assert f1 <= t0 or t1 <= f0, "a background completion overlapped a foreground section"


def test_foreground_waits_for_a_background_task_of_another_thread():
    events: list[str] = []
    started = threading.Event()

    def task():
        with host_lock.background():
            started.set()
            time.sleep(0.3)
            with host_lock.foreground():  # its own sections pass (re-entrant)
                events.append("background inner")
            events.append("background done")

    thread = threading.Thread(target=task)
    thread.start()
    started.wait()
    with host_lock.foreground():
        events.append("foreground")
    thread.join()
    assert events == ["background inner", "background done", "foreground"]
