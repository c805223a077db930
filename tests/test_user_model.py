"""A user's model through the front door: ``--model-file``/``--model``, ``check``, the record of
where models came from, deterministic sites and the README's own commands, end to end."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from svi_bench import models
from svi_bench.benchmarks import cli
from svi_bench.benchmarks.grid import model_sources
from svi_bench.benchmarks.scoring.verdict import LEVELS

ROOT = Path(__file__).resolve().parents[1]
SVI_BENCH = Path(sys.executable).with_name("svi-bench")

GOOD = '''
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from svi_bench.models import Dataset, ModelSpec

def model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
    numpyro.deterministic("mu2", 2.0 * mu)
    with numpyro.plate("n", y.shape[0]):
        numpyro.sample("obs", dist.Normal(mu, 1.0), obs=y)

def data(seed=0):
    return Dataset(model_kwargs={"y": jnp.asarray(np.array([0.5, 1.5, 1.0], dtype=DTYPE))})

SPEC = ModelSpec(name=NAME, description="a normal mean", source="a test", model=model,
                 data=data, guides={}, reference_kind="nuts", data_uses_seed=False,
                 extra_sites=("mu2",))
'''


def _model_file(folder: Path, name: str = "user_mean", dtype: str = "np.float32",
                body: str = GOOD) -> Path:
    """A model file; with a dtype other than float32 its data are NumPy arrays of that dtype
    (``jnp.asarray`` would quietly make them float32)."""
    if dtype != "np.float32":
        body = body.replace("jnp.asarray(np.array([0.5, 1.5, 1.0], dtype=DTYPE))",
                            "np.array([0.5, 1.5, 1.0], dtype=DTYPE)")
    path = folder / f"{name}.py"
    path.write_text(f"import numpy as np\nNAME = {name!r}\nDTYPE = {dtype}\n" + body)
    return path


@pytest.fixture(autouse=True)
def _registry_restored():
    """Loading model files registers them: every test leaves the registry as it found it."""
    before = dict(models.REGISTRY)
    yield
    models.REGISTRY.clear()
    models.REGISTRY.update(before)


def _run(argv, capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_check_passes_a_good_model_file(tmp_path, capsys):
    code, out, err = _run(["check", "--model-file", str(_model_file(tmp_path))], capsys)
    assert code == 0, out + err
    assert "model user_mean:" in out and "all checks passed" in out
    assert re.search(r"^  ok +extra_sites: scored deterministic sites: mu2$", out, re.M)


def test_check_lists_what_is_wrong_with_a_broken_model(tmp_path, capsys):
    path = _model_file(tmp_path, "broken_mean", dtype="np.float64")
    path.write_text(path.read_text().replace('extra_sites=("mu2",)', 'extra_sites=("mu",)'))
    code, out, err = _run(["check", "--model-file", str(path)], capsys)
    assert code == 1, out + err
    failed = [line for line in out.splitlines() if line.strip().startswith("FAILED")]
    assert any("float64" in line and "float32" in line for line in failed), out
    assert any("extra_sites" in line and "numpyro.deterministic" in line for line in failed), out
    assert "check(s) failed" in out


def test_run_refuses_a_model_that_breaks_the_contract(tmp_path, capsys):
    path = _model_file(tmp_path, "bad_dtype", dtype="np.float64")
    code, out, err = _run(["run", "--model-file", str(path), "--profile", "smoke",
                           "--out", str(tmp_path / "res")], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "float32" in err and "svi-bench check" in err
    assert not (tmp_path / "res" / "results.parquet").exists()


def test_run_takes_what_the_contract_detects_in_a_users_model_and_says_so(tmp_path, capsys,
                                                                         monkeypatch):
    """Data that ignore the seed without ``data_uses_seed=False``: one line, not a refusal."""
    from svi_bench.benchmarks.grid import execution

    path = _model_file(tmp_path, body=GOOD.replace("data_uses_seed=False,", ""))
    planned = []
    monkeypatch.setattr(execution, "run_grid", lambda cells, *a, **k: planned.extend(cells))
    code, out, err = _run(["run", "--model-file", str(path), "--methods", "nuts", "--profile",
                           "smoke", "--no-progress", "--out", str(tmp_path / "res")], capsys)
    assert code == 0 and len(planned) == 1, err
    assert err.strip() == ("note: model 'user_mean': data() ignores the seed: taken as "
                           "data_uses_seed=False (declare it in the spec to say so yourself)")
    code, out, _ = _run(["check", "--model-file", str(path)], capsys)
    assert code == 0 and "ok      data_seed: data() ignores the seed" in out


def test_import_failure_is_one_line_naming_the_file(tmp_path, capsys):
    bad = tmp_path / "typo.py"
    bad.write_text("import numpyro\ndef broken(:\n")
    for command in (["check"], ["list"], ["run", "--profile", "smoke"], ["reference"]):
        code, out, err = _run([*command, "--model-file", str(bad)], capsys)
        assert code == 2, command
        assert len(err.strip().splitlines()) == 1, err
        assert str(bad) in err and "SyntaxError" in err, err
    code, _, err = _run(["check", "--model-file", str(tmp_path / "missing.py")], capsys)
    assert code == 2 and "no such file" in err
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    code, _, err = _run(["check", "--model-file", str(empty)], capsys)
    assert code == 2 and "defines no ModelSpec" in err


def test_duplicate_model_names_are_a_clear_error(tmp_path, capsys):
    a = _model_file(tmp_path, "twin")
    other = tmp_path / "other"
    other.mkdir()
    b = _model_file(other, "twin")
    code, _, err = _run(["check", "--model-file", str(a), "--model-file", str(b)], capsys)
    assert code == 2 and "'twin'" in err and "already taken" in err and "rename" in err
    clash = _model_file(tmp_path, "coin")
    code, _, err = _run(["list", "--model-file", str(clash)], capsys)
    assert code == 2 and "'coin'" in err and "builtin" in err


def test_a_model_that_raises_is_one_line_in_list_and_reference(tmp_path, capsys):
    path = _model_file(tmp_path, "raiser")
    path.write_text(path.read_text().replace("def data(seed=0):\n",
                                             "def data(seed=0):\n    raise RuntimeError('no data today')\n"))
    code, out, err = _run(["list", "--model-file", str(path)], capsys)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("raiser")]
    assert lines == [lines[0]] and "RuntimeError: no data today" in lines[0]
    assert "Traceback" not in out + err
    assert "coin" in out  # the other models are still listed
    code, out, err = _run(["reference", "--model-file", str(path), "--quality", "smoke",
                           "--out", str(tmp_path / "res")], capsys)
    assert code == 1
    assert "raiser: reference FAILED: RuntimeError: no data today" in out
    assert "Traceback" not in out + err


def test_model_from_a_module_and_from_an_entry_point(tmp_path, capsys, monkeypatch):
    pkg = tmp_path / "pkg_user_models"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _model_file(pkg, "modmean")
    monkeypatch.syspath_prepend(str(tmp_path))
    code, out, err = _run(["check", "--model", "pkg_user_models.modmean:SPEC"], capsys)
    assert code == 0, out + err
    assert "model modmean:" in out
    code, _, err = _run(["check", "--model", "pkg_user_models.modmean:NOPE"], capsys)
    assert code == 2 and "no attribute 'NOPE'" in err

    class EP:
        def __init__(self, name, value, target):
            self.name, self.value, self._target = name, value, target

        def load(self):
            if isinstance(self._target, Exception):
                raise self._target
            return self._target

    from svi_bench.models import coin

    fake = [EP("broken", "nowhere:SPEC", ImportError("no module named nowhere")),
            EP("dup", "x:SPEC", [models.REGISTRY["coin"]])]
    import importlib.metadata

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda group: fake)
    warnings: list[str] = []
    origins = model_sources.load_sources(warn=warnings.append)
    assert origins == {}  # the registered spec itself is no duplicate
    assert warnings == ["warning: entry point broken (nowhere:SPEC) skipped: "
                        "ImportError: no module named nowhere"]
    assert models.REGISTRY["coin"] is coin.SPEC


def test_record_and_restore(tmp_path):
    path = _model_file(tmp_path, "recorded")
    origins = model_sources.load_sources([str(path)], entry_points=False)
    out = tmp_path / "res"
    out.mkdir()
    record_path = model_sources.write_record(out, ["recorded", "coin"], origins)
    record = json.loads(record_path.read_text())
    assert record["coin"] == {"kind": "builtin", "module": "svi_bench.models.coin"}
    assert record["recorded"]["kind"] == "file"
    assert record["recorded"]["path"] == str(path.resolve())
    assert oct(record_path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    models.unregister("recorded")
    specs, notes = model_sources.restore(out)
    assert set(specs) == {"coin", "recorded"} and notes == []
    assert specs["coin"] is models.REGISTRY["coin"]
    models.REGISTRY.pop("recorded", None)
    path.write_text(path.read_text() + "\n# edited\n")
    specs, notes = model_sources.restore(out)
    assert "recorded" not in specs
    assert len(notes) == 1 and "changed since the run" in notes[0]
    path.unlink()
    specs, notes = model_sources.restore(out)
    assert len(notes) == 1 and "is gone" in notes[0]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _readme_block(heading: str, lang: str) -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(rf"```{lang}\n(.*?)```", section, re.S).group(1)


def test_readme_commands_run_a_model_file_outside_the_repository(tmp_path):
    """The README's "Your own model" commands, verbatim, in a folder outside the repository
    holding only a copy of docs/my_model.py: a reference, verdicts, netCDF draws with the
    deterministic site, and a report page of the model, built after the model file is deleted."""
    import arviz as az
    import pandas as pd

    (tmp_path / "docs").mkdir()
    shutil.copyfile(ROOT / "docs" / "my_model.py", tmp_path / "docs" / "my_model.py")
    env = {**os.environ, "PYTHONHASHSEED": "0", "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    commands = [line for line in _readme_block("Your own model", "bash").splitlines() if line]
    assert [c.split()[:2] for c in commands] == [["svi-bench", "check"], ["svi-bench", "run"],
                                                ["svi-bench", "report"]]
    outputs = []
    for command in commands:
        argv = shlex.split(command)
        if argv[1] == "report":  # the report reads the results folder alone: the file may go
            (tmp_path / "docs" / "my_model.py").unlink()
        done = subprocess.run([str(SVI_BENCH), *argv[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        outputs.append(done.stdout)
    assert "all checks passed" in outputs[0]
    res = tmp_path / "my_results"
    df = pd.read_parquet(res / "results.parquet")
    assert set(df["model"]) == {"eight_schools"}
    assert set(df["status"]) == {"ok"} and df["verdict"].isin(LEVELS).all()
    assert sorted((res / "references").glob("eight_schools__*.nc"))
    for artifact in sorted((res / "runs").glob("eight_schools__*.nc")):
        posterior = az.from_netcdf(artifact).posterior
        assert {"mu", "tau", "theta_raw", "theta"} <= set(posterior.data_vars)
        assert posterior["theta"].sizes["theta_dim_0"] == 8 if "theta_dim_0" in posterior[
            "theta"].dims else posterior["theta"].shape[-1] == 8
    record = json.loads((res / "models.json").read_text())
    assert record["eight_schools"]["kind"] == "file"
    page = (res / "report" / "models" / "eight_schools.html").read_text()
    assert "Rubin (1981)" in page  # the description and source come from the manifest
    assert json.loads((res / "manifest.json").read_text())["models"]["eight_schools"][
        "origin"]["kind"] == "file"


def test_compare_from_python(tmp_path):
    import numpy as np
    import numpyro
    import numpyro.distributions as dist

    from svi_bench.benchmarks import compare

    def model(y):
        mu = numpyro.sample("mu", dist.Normal(0.0, 10.0))
        numpyro.deterministic("mu_plus_one", mu + 1.0)
        with numpyro.plate("n", y.shape[0]):
            numpyro.sample("obs", dist.Normal(mu, 1.0), obs=y)

    y = np.array([0.3, 1.2, 0.8, 1.9], dtype=np.float32)
    prec = 1 / 100 + len(y)
    mean, sd = y.sum() / prec, prec ** -0.5

    def exact(rng, n, ds):
        mu = rng.normal(mean, sd, size=n)
        return {"mu": mu, "mu_plus_one": mu + 1.0}

    def moments(ds):
        return {"mu": (np.asarray(mean), np.asarray(sd))}

    df = compare(model, {"y": y}, methods=["autonormal"], profile="smoke", name="api_mean",
                 out=tmp_path / "res", exact_sampler=exact, exact_moments=moments,
                 extra_sites=("mu_plus_one",))
    assert list(df["method"]) == ["autonormal"] and list(df["status"]) == ["ok"]
    assert df["verdict"].iloc[0] in LEVELS and df["verdict_reason"].iloc[0]
    stored = json.loads((tmp_path / "res" / "references").glob("api_mean__*.json").__next__()
                        .read_text())
    assert stored["kind"] == "exact" and stored["ok"]
    with pytest.raises(ValueError, match="unknown profile"):
        compare(model, {"y": y}, profile="nope", out=tmp_path / "res")
    with pytest.raises(ValueError, match="float32"):
        compare(model, {"y": y.astype(np.float64)}, name="api_bad", out=tmp_path / "res")


def _docs_block(page: str, lang: str) -> str:
    return re.search(rf"```{lang}\n(.*?)```", (ROOT / "docs" / page).read_text(), re.S).group(1)


def test_docs_compare_example(tmp_path, monkeypatch):
    """The docs' ``compare`` example (docs/examples/compare.md), verbatim: a table with one ok,
    scored row per method."""
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    code = _docs_block("examples/compare.md", "python")
    exec(compile(code, "docs/examples/compare.md", "exec"), namespace)
    df = namespace["df"]
    assert sorted(df["method"]) == ["autonormal", "nuts"]
    assert set(df["status"]) == {"ok"} and df["verdict"].isin(LEVELS).all()
    assert (tmp_path / "my_results" / "results.parquet").is_file()
    assert json.loads((tmp_path / "my_results" / "models.json").read_text())["my_model"]["kind"] \
        == "python"


def test_a_run_time_failure_is_a_failed_row_and_in_the_summary(tmp_path, capsys):
    """A model that passes the contract (default size) but raises for another size: failed rows
    with the reason, printed at the end of the run; nothing else is lost."""
    path = _model_file(tmp_path, "sized")
    path.write_text(path.read_text()
                    .replace("def data(seed=0):\n",
                             "def data(seed=0, n=3):\n    if n > 3:\n"
                             "        raise ValueError(f'only 3 points, asked for {n}')\n")
                    .replace("extra_sites=", "size_defaults={'n': 3}, extra_sites="))
    out_dir = tmp_path / "res"
    code, out, err = _run(["run", "--model-file", str(path), "--profile", "smoke",
                           "--methods", "autonormal", "--size", "sized.n=5", "--no-progress",
                           "--out", str(out_dir)], capsys)
    assert code == 0, err
    summary = [line for line in out.splitlines() if line.startswith("failed: sized")]
    assert summary == ["failed: sized x autonormal seed 0: model or data failed: "
                       "ValueError: only 3 points, asked for 5"], out
    assert "0 ok, 1 failed" in out
    import pandas as pd

    df = pd.read_parquet(out_dir / "results.parquet")
    assert list(df["status"]) == ["failed"] and "only 3 points" in df["error"].iloc[0]


RUN_SMOKE = ["--methods", "autonormal", "--seeds", "1", "--profile", "smoke", "--no-progress"]


def test_resume_runs_an_edited_model_file_anew_and_keeps_the_old_rows(tmp_path, capsys):
    """The model's source is part of a run's identity: editing the prior is a new run, even
    with --resume, and the old model's row and artifact stay under their own identity."""
    import pandas as pd

    path = _model_file(tmp_path, "editme")
    out = tmp_path / "res"
    argv = ["run", "--model-file", str(path), *RUN_SMOKE, "--out", str(out)]
    code, stdout, err = _run(argv, capsys)
    assert code == 0 and "1 ok" in stdout, stdout + err
    path.write_text(path.read_text().replace("dist.Normal(0.0, 10.0)", "dist.Normal(0.0, 2.0)"))
    code, stdout, err = _run([*argv, "--resume"], capsys)
    assert code == 0 and "1 ok" in stdout, stdout + err
    df = pd.read_parquet(out / "results.parquet")
    assert len(df) == 2 and df.settings_hash.nunique() == 2 and set(df.status) == {"ok"}
    assert all((out / a).is_file() for a in df.artifact) and df.artifact.nunique() == 2
    code, stdout, err = _run([*argv, "--resume"], capsys)  # unchanged since: nothing to do
    assert code == 0 and "0 ok" in stdout, stdout + err


def test_another_file_of_a_recorded_model_name_is_refused(tmp_path, capsys):
    """One name is one model in a results folder (its rows, page and description): a second file
    declaring the same name is one line, exit 2, with models.json and the rows untouched."""
    import pandas as pd

    first = _model_file(tmp_path, "twin")
    (tmp_path / "other").mkdir()
    second = _model_file(tmp_path / "other", "twin")
    second.write_text(second.read_text().replace("a normal mean", "another model"))
    out = tmp_path / "res"
    code, stdout, err = _run(["run", "--model-file", str(first), *RUN_SMOKE, "--out", str(out)],
                             capsys)
    assert code == 0, stdout + err
    record = (out / "models.json").read_text()
    rows = pd.read_parquet(out / "results.parquet")
    models.unregister("twin")
    code, stdout, err = _run(["run", "--model-file", str(second), *RUN_SMOKE, "--out", str(out)],
                             capsys)
    assert code == 2
    assert err.count("\n") == 1 and "'twin'" in err and str(first.resolve()) in err
    assert str(second.resolve()) in err and "rename" in err
    assert (out / "models.json").read_text() == record
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), rows)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["twin"]["description"] == "a normal mean"
