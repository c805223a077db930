"""Bad input to ``svi-bench run`` / ``reference``: exit 2, one line naming what is wrong and what
is valid, and nothing already computed lost or overwritten (issue 9, "Bad input").

One small ok results folder (coin: NUTS and a manual guide, smoke profile) is computed once; every
test works on a copy and checks that every file of it is byte-identical afterwards.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import shutil
import stat

import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks import cli
from svi_bench.benchmarks.grid import execution
from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.scoring import references
from svi_bench.benchmarks.scoring.verdict import LEVELS
from svi_bench.models import Dataset, ModelSpec

RUN = ["run", "--models", "coin", "--methods", "nuts,manual:beta", "--seeds", "1",
       "--profile", "smoke", "--no-progress"]
UMASK = 0o027  # differs from mkstemp's 0600 and from the usual 0644


@pytest.fixture(scope="module")
def computed(tmp_path_factory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("computed") / "results"
    old = os.umask(UMASK)
    try:
        assert cli.main([*RUN, "--out", str(out)]) == 0
    finally:
        os.umask(old)
    df = pd.read_parquet(out / "results.parquet")
    assert (df.status == "ok").all() and len(df) == 2
    return out


@pytest.fixture
def folder(computed, tmp_path) -> pathlib.Path:
    copy = tmp_path / "results"
    shutil.copytree(computed, copy)
    return copy


def _fingerprint(folder: pathlib.Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def no_compute(monkeypatch):
    """Bad input must be refused before anything is computed."""
    def refuse(*args, **kwargs):
        raise AssertionError("run_grid was called for bad input")
    monkeypatch.setattr(execution, "run_grid", refuse)


def _refused(argv: list[str], capsys, *words: str) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("error: ")
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.mark.parametrize("setting, words", [
    ("learning_rate=inf", ["learning_rate", "must be > 0 and finite", "inf"]),
    ("learning_rate=0", ["learning_rate", "must be > 0 and finite"]),
    ("guide_options=abc", ["guide_options=abc", "not a JSON object", "valid", '{"K": 8}']),
    ("guide_options=[1, 2]", ["guide_options", "not a JSON object", "valid"]),
    ("num_steps=2.5", ["num_steps", "positive integer", "2.5"]),
])
def test_a_bad_setting_is_refused_and_the_ok_rows_stay(folder, capsys, no_compute, setting, words):
    before = _fingerprint(folder)
    _refused([*RUN, "--out", str(folder), "--set", setting], capsys, *words)
    assert _fingerprint(folder) == before


@pytest.mark.parametrize("value", ["0", "-3", "abc", "2.5"])
def test_a_bad_size_is_refused_by_the_spec_that_declares_it(folder, capsys, no_compute, value):
    before = _fingerprint(folder)
    argv = ["run", "--models", "hierarchical_linreg", "--methods", "nuts", "--seeds", "0",
            "--out", str(folder), "--size", f"hierarchical_linreg.n_groups={value}"]
    _refused(argv, capsys, f"n_groups={value}", "must be an integer >= 1")
    assert _fingerprint(folder) == before


def test_a_size_in_range_is_typed(capsys):
    from svi_bench.models import REGISTRY

    key = REGISTRY["hierarchical_linreg"].data_key(n_groups="16")
    assert key["n_groups"] == 16 and isinstance(key["n_groups"], int)
    _refused(["reference", "--model", "gamma_concentration", "--size",
              "gamma_concentration.concentration_true=0"], capsys,
             "concentration_true", "finite number > 0")


@pytest.mark.parametrize("seeds, words", [
    ("4294967296,1", ["--seeds", "0 to 4294967295", "uint32"]),
    (",", ["--seeds", "lists no seed", "valid"]),
    ("-1,2", ["--seeds", "0 to 4294967295"]),
])
def test_bad_seeds_are_refused(folder, capsys, no_compute, seeds, words):
    before = _fingerprint(folder)
    _refused([*RUN[:5], f"--seeds={seeds}", "--out", str(folder)], capsys, *words)
    assert _fingerprint(folder) == before


@pytest.mark.parametrize("option, value", [
    ("--models", ""), ("--models", " , "), ("--methods", ","), ("--skip-methods", ""),
    ("--out", ""),
])
def test_an_empty_list_or_folder_is_refused(tmp_path, capsys, no_compute, monkeypatch, option,
                                            value):
    """``--models ''`` is not "all models", ``--out ''`` not the current directory."""
    monkeypatch.chdir(tmp_path)
    argv = ["run", "--models", "coin", "--profile", "smoke", "--no-progress", "--out", "results"]
    _refused([*argv, f"{option}={value}"], capsys, option, repr(value), "valid")
    assert not any(tmp_path.iterdir())


def test_check_refuses_an_empty_model_list(capsys, no_compute):
    _refused(["check", "--models", ","], capsys, "--models", "names nothing")
    _refused(["reference", "--model", "coin", "--out", ""], capsys, "--out", "no folder")


def test_a_repeated_model_or_method_runs_once(tmp_path, monkeypatch):
    planned = []

    def record(cells, results, **kwargs):
        planned.extend((c.spec.name, c.method, tuple(c.seeds)) for c in cells)
    monkeypatch.setattr(execution, "run_grid", record)
    argv = ["run", "--models", "coin,coin", "--model", "coin", "--methods", "nuts,nuts",
            "--profile", "smoke", "--no-progress", "--out", str(tmp_path / "out")]
    assert cli.main(argv) == 0
    assert planned == [("coin", "nuts", (0,))]


def test_out_that_is_a_file_or_under_a_file_is_refused(tmp_path, capsys, no_compute):
    afile = tmp_path / "afile"
    afile.write_text("keep me")
    for out in (afile, afile / "sub"):
        _refused([*RUN, "--out", str(out)], capsys, str(afile), "is a file, not a folder", "valid")
    _refused(["reference", "--model", "coin", "--out", str(afile)], capsys,
             "is a file, not a folder", "valid")
    assert afile.read_text() == "keep me"


def _unwritable_folder(tmp_path: pathlib.Path) -> pathlib.Path:
    if os.geteuid() != 0:
        folder = tmp_path / "readonly"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    for candidate in (pathlib.Path("/sys/kernel"), pathlib.Path("/proc/sys")):
        if candidate.is_dir() and not os.access(candidate, os.W_OK | os.X_OK) or (
                candidate.is_dir() and _probe_fails(candidate)):
            return candidate
    pytest.skip("no unwritable folder on this machine")


def _probe_fails(folder: pathlib.Path) -> bool:
    try:
        (folder / ".svi-bench-probe").write_bytes(b"")
    except OSError:
        return True
    (folder / ".svi-bench-probe").unlink()
    return False


def test_out_that_cannot_be_written_is_refused_before_computing(tmp_path, capsys, no_compute):
    out = _unwritable_folder(tmp_path)
    _refused([*RUN, "--out", str(out)], capsys, str(out), "is not writable", "valid")
    _refused(["reference", "--model", "coin", "--out", str(out)], capsys, "is not writable")


def test_a_read_only_results_folder_loses_nothing(folder, capsys, no_compute, monkeypatch):
    """A folder holding results on a read-only file system: refused before computing."""
    before = _fingerprint(folder)
    real = pathlib.Path.write_bytes

    def read_only(self, data):
        if str(self).startswith(str(folder)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(self))
        return real(self, data)

    monkeypatch.setattr(pathlib.Path, "write_bytes", read_only)
    _refused([*RUN, "--out", str(folder)], capsys, "is not writable",
             os.strerror(errno.EROFS), "valid")
    monkeypatch.undo()
    assert _fingerprint(folder) == before


def _rewrite_results(folder: pathlib.Path, change) -> None:
    df = pd.read_parquet(folder / "results.parquet")
    change(df)
    (folder / "results.parquet").unlink()
    df.to_parquet(folder / "results.parquet", index=False)


def test_a_results_table_with_text_seeds_is_refused(folder, capsys, no_compute):
    def text_seeds(df):
        df["seed"] = df["seed"].astype(str)
    _rewrite_results(folder, text_seeds)
    before = _fingerprint(folder)
    _refused([*RUN, "--out", str(folder)], capsys, "results.parquet", "seed column",
             "valid: integer seeds")
    assert _fingerprint(folder) == before


def test_a_results_table_with_a_missing_seed_is_refused(folder, capsys, no_compute):
    def null_seed(df):
        df["seed"] = df["seed"].astype("Int64")
        df.loc[0, "seed"] = None
    _rewrite_results(folder, null_seed)
    before = _fingerprint(folder)
    _refused([*RUN, "--out", str(folder)], capsys, "seed column", "valid: integer seeds")
    assert _fingerprint(folder) == before


def test_a_results_file_that_is_a_directory_is_named_as_such(tmp_path, capsys, no_compute):
    (tmp_path / "results.parquet").mkdir()
    _refused([*RUN, "--out", str(tmp_path)], capsys, "is a directory, not a parquet file")


def test_a_null_status_is_not_done_under_resume(folder, capsys):
    def null_status(df):
        df.loc[df.method == "nuts", "status"] = None
    _rewrite_results(folder, null_status)
    kept = pd.read_parquet(folder / "results.parquet").set_index("method").loc["manual:beta"]
    assert cli.main([*RUN, "--out", str(folder), "--resume"]) == 0
    assert "1 ok, 0 failed" in capsys.readouterr().out  # only the null row ran again
    df = pd.read_parquet(folder / "results.parquet").set_index("method")
    assert len(df) == 2 and (df.status == "ok").all()
    assert df.loc["manual:beta", "started_at"] == kept["started_at"]  # not run again


@pytest.mark.parametrize("payload", ['"nonsense"', "[1, 2]", "{not json"])
def test_a_reference_json_that_is_not_an_object_is_rebuilt_with_a_message(folder, capsys,
                                                                          payload):
    paths = sorted((folder / "references").glob("coin__*.json"))
    assert paths, "the run stores its reference in the results folder"
    for path in paths:
        path.write_text(payload)
    assert cli.main(["reference", "--model", "coin", "--out", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "is corrupt" in err and "not used" in err, err
    for path in paths:
        assert isinstance(json.loads(path.read_text()), dict)


def test_a_bad_reference_json_in_the_results_folder_costs_no_metrics(folder, capsys):
    for path in (folder / "references").glob("coin__*.json"):
        path.write_text('"nonsense"')
    argv = [*RUN, "--out", str(folder), "--methods", "manual:beta", "--set", "num_steps=300"]
    assert cli.main(argv) == 0
    assert "is corrupt" in capsys.readouterr().err
    df = pd.read_parquet(folder / "results.parquet")
    new = df[df.settings.str.contains('"num_steps": 300')]
    assert len(new) == 1 and new.verdict.isin(LEVELS).all()
    assert new.w1_max.notna().all()


def _toy_model(y=None):
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def _toy_data(seed: int = 0) -> Dataset:
    return Dataset({"y": np.float32(0.5)})


def _toy_exact(rng, n, ds):
    return {"mu": rng.normal(0.25, np.sqrt(0.5), size=n).astype(np.float32)}


TOY = ModelSpec(name="toy_bad_input", description="normal mean", source="tests",
                model=_toy_model, data=_toy_data, guides={}, reference_kind="exact",
                exact_sampler=_toy_exact, data_uses_seed=False)


@pytest.mark.parametrize("payload", ['"nonsense"', "[1, 2]"])
def test_a_cached_reference_that_is_not_an_object_is_rebuilt_with_a_message(
        tmp_path, monkeypatch, payload):
    monkeypatch.setattr(jax_setup, "DEFAULT_CACHE_DIR", tmp_path / "cache")
    ds, key = TOY.make_data(), TOY.data_key()
    references.get_reference(TOY, ds, key, ("mu",), tmp_path / "first", log=lambda m: None)
    cached = references.reference_paths(tmp_path / "cache", TOY, key)[1]
    cached.write_text(payload)
    messages: list[str] = []
    ref = references.get_reference(TOY, ds, key, ("mu",), tmp_path / "second",
                                   log=messages.append)
    assert ref.ok
    assert any("is corrupt" in m and "(cache)" in m for m in messages), messages
    assert any("building" in m for m in messages), messages
    assert isinstance(json.loads(cached.read_text()), dict)


def test_every_file_written_follows_the_umask(computed, tmp_path):
    """mkstemp makes 0600 files; the suite's files are as readable as the umask says."""
    files = [p for p in computed.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".parquet", ".csv", ".nc", ".json"}
    modes = {str(p.relative_to(computed)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~UMASK)}, modes
    from svi_bench.reports.cli import main as report_main

    old = os.umask(UMASK)
    try:
        assert report_main(["build", "--results", str(computed), "--out", str(tmp_path / "r"),
                            "--history", str(tmp_path / "h"), "--quiet"]) == 0
    finally:
        os.umask(old)
    report = [p for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert report and {oct(stat.S_IMODE(p.stat().st_mode)) for p in report} == {oct(0o640)}
