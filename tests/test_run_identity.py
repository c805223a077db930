"""Rows keep their settings, and every run's draws are an ArviZ InferenceData netCDF (issue 9).

A run is identified by (model, method, seed, settings_hash, data): other settings add rows and
artifacts, ``--resume`` skips exactly the identities stored ok, and a failed re-run never
replaces an ok row or its artifact.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import warnings

import matplotlib
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks import cli
from svi_bench.benchmarks.grid import run_spec, runner, store
from svi_bench.benchmarks.grid.schema import KEY
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.reports import loader

matplotlib.use("Agg")

RUN = ["run", "--models", "coin", "--methods", "nuts,manual:beta", "--seeds", "1",
       "--profile", "smoke", "--no-progress"]


@pytest.fixture(scope="module")
def two_variants(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("variants")
    assert cli.main([*RUN, "--out", str(out)]) == 0
    assert cli.main([*RUN, "--out", str(out), "--set", "learning_rate=0.02"]) == 0
    return out


def _digest(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_other_settings_add_rows_and_artifacts(two_variants):
    df = pd.read_parquet(two_variants / "results.parquet")
    beta = df[df.method == "manual:beta"]
    assert len(beta) == 2 and beta.settings_hash.nunique() == 2
    rates = [json.loads(s)["learning_rate"] for s in beta.settings]
    assert rates.count(0.02) == 1
    # NUTS ignores learning_rate: the same identity, re-run and replaced, not duplicated
    assert len(df[df.method == "nuts"]) == 1
    assert not df.duplicated(list(KEY)).any()
    assert df.artifact.nunique() == len(df) == 3
    for rel in df.artifact:
        assert (two_variants / rel).is_file() and rel.endswith(".nc")
    # selecting one settings variant in pandas, as the README shows
    lr = df.settings.map(lambda s: json.loads(s).get("learning_rate"))
    assert len(df[lr == 0.02]) == 1


def test_resume_skips_exactly_the_ok_identities(two_variants, capsys):
    before = pd.read_parquet(two_variants / "results.parquet")
    assert cli.main([*RUN, "--out", str(two_variants), "--resume",
                     "--set", "learning_rate=0.02"]) == 0
    assert "0 ok, 0 failed" in capsys.readouterr().out
    after = pd.read_parquet(two_variants / "results.parquet")
    pd.testing.assert_frame_equal(before, after)


def test_artifacts_open_with_arviz_as_users_expect(two_variants, tmp_path):
    az = pytest.importorskip("arviz")
    df = pd.read_parquet(two_variants / "results.parquet")
    nuts = az.from_netcdf(str(two_variants / df[df.method == "nuts"].artifact.iloc[0]))
    assert {"posterior", "sample_stats", "warmup_sample_stats"} <= set(nuts.groups())
    assert {"chain", "draw"} <= set(nuts.posterior.dims)
    assert nuts.posterior.sizes["chain"] > 1
    assert {"diverging", "energy", "n_steps"} <= set(nuts.sample_stats.data_vars)
    assert nuts.sample_stats["diverging"].dtype == bool
    assert "n_steps" in nuts.warmup_sample_stats
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(nuts)
        assert "latent_fairness" in summary.index and np.isfinite(summary["mean"]).all()
    assert cli.main(["run", "--models", "correlated_gaussian", "--methods", "nuts", "--seeds", "1",
                     "--profile", "smoke", "--no-progress", "--out", str(tmp_path)]) == 0
    pair = pd.read_parquet(tmp_path / "results.parquet").artifact.iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        axes = az.plot_pair(az.from_netcdf(str(tmp_path / pair)), divergences=True)
        assert np.asarray(axes).size >= 1
    svi_row = df[df.method == "manual:beta"].iloc[0]
    svi = az.from_netcdf(str(two_variants / svi_row.artifact))
    assert svi.posterior.sizes["chain"] == 1
    assert svi.posterior.sizes["draw"] == svi_row.num_draws
    assert svi.svi["loss"].sizes["step"] == svi_row.num_steps
    assert "particle_elbo" in svi.svi
    assert svi.posterior.attrs["settings_hash"] == svi_row.settings_hash
    assert svi.posterior.attrs["status"] == "ok"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert np.isfinite(az.summary(svi, kind="stats")["mean"]).all()


def test_a_failed_rerun_keeps_the_ok_row_and_its_artifact(two_variants, tmp_path):
    df = pd.read_parquet(two_variants / "results.parquet")
    ok = df[df.method == "nuts"].iloc[0].to_dict()
    results = store.ResultsStore(tmp_path)
    results.add([ok])
    failed = {**ok, "status": "failed", "error": "FloatingPointError: test", "artifact": ""}
    results.add([failed])
    kept = pd.read_parquet(tmp_path / "results.parquet")
    assert len(kept) == 1 and kept.status.iloc[0] == "ok"
    assert results.kept_back and results.kept_back[0]["error"] == "FloatingPointError: test"
    # a different identity (other settings) is added, not kept back
    results.add([{**failed, "settings_hash": "other"}])
    assert len(pd.read_parquet(tmp_path / "results.parquet")) == 2

    # the artifact: a failed re-run of the same identity does not overwrite the ok file
    [cell] = run_spec.plan([_coin()], ["nuts"], [0], "smoke")
    path = two_variants / ok["artifact"]
    assert path.name == store.artifact_path(two_variants, "coin", "nuts", 0, cell.hash).name
    before = _digest(path)
    row = {**ok, "status": "failed", "artifact": ""}
    runner.save_run(two_variants, cell, row, {"latent_fairness": np.full((1, 2, 3), np.nan)},
                     nuts={"energy": np.zeros((2, 3))})
    assert _digest(path) == before and row["artifact"] == ""
    assert arviz_adapter.run_status(path) == "ok"


def _coin():
    from svi_bench.models import REGISTRY

    return REGISTRY["coin"]


def test_the_report_shows_the_latest_variant_of_a_run():
    df = pd.DataFrame({
        "model": ["m", "m", "m"], "method": ["a", "a", "a"], "seed": [0, 0, 1],
        "settings_hash": ["old", "new", "old"],
        "started_at": ["2025-01-01T00:00:00+00:00", "2025-02-01T00:00:00+00:00",
                       "2025-01-01T00:00:00+00:00"],
    })
    shown = loader.latest_variant(df)
    assert sorted(zip(shown.seed, shown.settings_hash, strict=True)) == [(0, "new"), (1, "old")]


def test_the_report_builds_from_a_folder_with_two_variants(two_variants, tmp_path):
    from svi_bench.reports.cli import main as report_main

    assert report_main(["build", "--results", str(two_variants), "--out", str(tmp_path / "r"),
                        "--history", str(tmp_path / "h"), "--quiet"]) == 0
    shown = loader.load(two_variants).df
    beta = shown[shown.method == "manual:beta"]
    assert len(beta) == 1 and json.loads(beta.settings.iloc[0])["learning_rate"] == 0.02
    assert (tmp_path / "r" / "index.html").is_file()
