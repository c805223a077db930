"""Bad input: one line naming what is wrong and what is valid, exit 2, nothing lost."""

from __future__ import annotations

import pytest

from svi_bench.benchmarks.cli import main
from svi_bench.models import REGISTRY
from tests.conftest import run_cli


@pytest.mark.parametrize(
    "args, expected",
    [
        (["run", "--models", "nope"], "unknown model 'nope'; valid: coin"),
        (["run", "--methods", "autofoo"], "unknown method 'autofoo'; valid: nuts"),
        (["run", "--profile", "fast"], "unknown profile 'fast'; valid: smoke, quick, paper"),
        (["run", "--seeds", "0"], "--seeds must be at least 1"),
        (["run", "--seeds", "a,b"], "--seeds takes a count"),
        (["run", "--set", "num_steps=-5"], "num_steps must be a positive integer"),
        (["run", "--set", "learning_rate=0"], "learning_rate must be > 0"),
        (["run", "--set", "warp=9"], "unknown setting 'warp'; valid:"),
        (["run", "--set", "num_steps"], "is not KEY=VALUE"),
        (["run", "--size", "hierarchical_linreg.groups=3"], "no size parameter 'groups'; valid"),
        (["run", "--models", "coin", "--methods", "manual:nope"], "valid: manual:beta"),
        (["reference", "--model", "nope"], "unknown model 'nope'"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, expected, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert expected in err
    assert len(err.splitlines()) == 1


def test_corrupt_results_file_is_reported_and_kept(tmp_path):
    bad = tmp_path / "results.parquet"
    bad.write_bytes(b"this is not parquet")
    proc = run_cli("run", "--profile", "smoke", "--models", "coin", "--methods", "nuts",
                   "--out", str(tmp_path), "--no-progress")
    assert proc.returncode == 2
    assert "is corrupt" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert bad.read_bytes() == b"this is not parquet"


def test_list_shows_every_model_and_method():
    proc = run_cli("list")
    assert proc.returncode == 0, proc.stderr
    assert len(REGISTRY) >= 8
    for name in REGISTRY:
        assert name in proc.stdout
    assert "autobnaf" in proc.stdout and "manual:beta" in proc.stdout
