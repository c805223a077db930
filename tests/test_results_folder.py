"""A results folder's integrity (issue 28): runs sharing one ``--out`` lose no rows or records,
``--resume`` re-runs an ok row whose artifact cannot be read, and a folder whose parquet is gone
but whose CSV holds rows is refused, not overwritten."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from svi_bench.benchmarks.grid import manifest, model_sources, run_spec, store
from svi_bench.models import REGISTRY
from tests.conftest import CONSOLE, run_cli

SMOKE = ["--methods", "autonormal", "--profile", "smoke", "--seeds", "0,1", "--no-progress"]
ROWS_PER_WRITER = 12


def _row(writer: int, i: int) -> dict:
    return {"model": f"m{writer}", "method": "a", "seed": i, "settings_hash": "h", "data": "{}",
            "status": "ok", "error": "", "warning": "", "artifact": ""}


def _write_rows(out: str, writer: int, start) -> None:
    results = store.ResultsStore(Path(out))  # both read the folder before either writes
    start.wait()
    for i in range(ROWS_PER_WRITER):
        results.add([_row(writer, i)])


def _write_records(out: str, writer: int, start) -> None:
    start.wait()
    for i in range(ROWS_PER_WRITER):
        name = f"w{writer}_{i}"
        model_sources.write_record(Path(out), [name], {name: {"kind": "builtin", "module": name}})
        cell = run_spec.make_run_spec(REGISTRY["coin"], "autonormal", _settings(), [i],
                                      {}, "smoke")
        manifest.write(Path(out), [dataclasses.replace(cell, hash=f"h{writer}_{i}")],
                       [REGISTRY["coin"]], {})


def _settings():
    from svi_bench.benchmarks.grid.profiles import settings_for

    return settings_for("smoke", "coin", "autonormal")


def _hammer(target, out: Path) -> None:
    ctx = multiprocessing.get_context("spawn")  # no fork of a process running JAX threads
    start = ctx.Barrier(2)
    procs = [ctx.Process(target=target, args=(str(out), w, start)) for w in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def test_two_processes_adding_rows_to_one_store_keep_every_row(tmp_path):
    store.ResultsStore(tmp_path).add([])  # the folder and an empty table exist
    _hammer(_write_rows, tmp_path)
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert len(df) == 2 * ROWS_PER_WRITER
    assert len(pd.read_csv(tmp_path / "results.csv")) == 2 * ROWS_PER_WRITER


def test_two_processes_recording_models_and_cells_keep_every_entry(tmp_path):
    _hammer(_write_records, tmp_path)
    record, why = model_sources.read_record(tmp_path)
    assert why == "" and len(record) == 2 * ROWS_PER_WRITER
    cells = json.loads((tmp_path / "manifest.json").read_text())["cells"]
    assert len(cells) == 2 * ROWS_PER_WRITER


def test_two_real_runs_into_one_folder_keep_every_row_and_artifact(tmp_path):
    """Two ``svi-bench run`` processes started together into one ``--out``."""
    procs = [subprocess.Popen([str(CONSOLE), "run", "--models", model, *SMOKE, "--out",
                               str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
             for model in ("coin", "gamma_concentration")]
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-2000:]
        assert "2 ok" in out
    df = pd.read_parquet(tmp_path / "results.parquet")
    assert sorted(df["model"]) == ["coin"] * 2 + ["gamma_concentration"] * 2
    assert set(df["status"]) == {"ok"}
    artifacts = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "runs").glob("*.nc"))
    assert artifacts == sorted(df["artifact"])
    assert set(model_sources.read_record(tmp_path)[0]) == {"coin", "gamma_concentration"}
    written = json.loads((tmp_path / "manifest.json").read_text())
    assert set(written["models"]) == {"coin", "gamma_concentration"}
    assert {c["model"] for c in written["cells"]} == {"coin", "gamma_concentration"}


@pytest.mark.parametrize("damage", ["truncate", "garbage", "delete"])
def test_resume_reruns_an_ok_row_whose_artifact_cannot_be_read(tmp_path, damage):
    argv = ["run", "--models", "coin", *SMOKE, "--out", str(tmp_path)]
    assert run_cli(*argv).returncode == 0
    df = pd.read_parquet(tmp_path / "results.parquet")
    broken = tmp_path / df["artifact"].iloc[0]
    if damage == "truncate":
        broken.write_bytes(broken.read_bytes()[:200])
    elif damage == "garbage":
        broken.write_bytes(b"not a netCDF file")
    else:
        broken.unlink()
    done = run_cli(*argv, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 ok" in done.stdout  # the damaged run again, the intact one skipped
    after = pd.read_parquet(tmp_path / "results.parquet")
    assert len(after) == 2 and set(after["status"]) == {"ok"}
    from svi_bench.benchmarks.scoring import arviz_adapter

    assert arviz_adapter.run_status(broken) == "ok"


def test_a_results_csv_without_its_parquet_is_refused_not_overwritten(tmp_path):
    rows = pd.DataFrame([_row(0, 0), _row(0, 1)])
    rows.to_csv(tmp_path / "results.csv", index=False)
    before = (tmp_path / "results.csv").read_text()
    done = run_cli("run", "--models", "coin", *SMOKE, "--out", str(tmp_path))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "results.csv" in lines[0] and "results.parquet" in lines[0]
    assert "2 rows" in lines[0] and "Traceback" not in done.stderr
    assert (tmp_path / "results.csv").read_text() == before
    assert not (tmp_path / "results.parquet").exists()
    with pytest.raises(store.ResultsError, match="results.csv"):
        store.ResultsStore(tmp_path)
