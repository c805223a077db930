"""A startup nobody notices: ``--help`` imports no numerical library, the hash-seed re-exec comes
before any, and ``list`` takes latent dimensions from a record (or from ``jax.eval_shape``)
instead of initialising every model. Nothing here asserts a wall time."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys

import pytest

from svi_bench.benchmarks import cli
from svi_bench.benchmarks.inference import jax_setup, latent_record
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.models import REGISTRY
from tests.conftest import CONSOLE

HEAVY = ("jax", "numpyro", "arviz", "pandas", "matplotlib", "scipy", "xarray", "flax")
LOADED = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
DIMS = {"coin": 1, "gamma_concentration": 1, "dirichlet_categorical": 11, "multimodal_2d": 2,
        "correlated_gaussian": 2, "funnel": 5, "linreg_outliers": 5, "hierarchical_linreg": 20,
        "hierarchical_linreg_nc": 20, "bnn": 31}
"""The built-in models' unconstrained dimensions (their descriptions state them)."""


def _python(code: str, **env: str | None) -> str:
    environ = {**os.environ, **{k: v for k, v in env.items() if v is not None}}
    for key in (k for k, v in env.items() if v is None):
        environ.pop(key, None)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environ, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_importing_the_command_line_imports_no_numerical_library():
    code = ("import sys, svi_bench.benchmarks, svi_bench.benchmarks.console, "
            "svi_bench.benchmarks.__main__, svi_bench.benchmarks.cli, "
            f"svi_bench.benchmarks.model_commands; print({LOADED})")
    assert _python(code) == "[]"


def _subcommands() -> list[str]:
    """Every sub-command of ``svi-bench``, from its parser (a new one is covered unasked)."""
    import argparse

    actions = cli.build_parser()._actions
    return [name for a in actions if isinstance(a, argparse._SubParsersAction) for name in a.choices]


@pytest.mark.parametrize("command", [[], *([c] for c in _subcommands())],
                         ids=lambda c: " ".join(c) or "svi-bench")
def test_help_imports_no_numerical_library(command):
    assert {"list", "run", "reference", "report"} <= set(_subcommands())
    code = ("import contextlib, io, sys\n"
            "from svi_bench.benchmarks.console import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "    try:\n"
            f"        main({[*command, '--help']!r})\n"
            "    except SystemExit:\n"
            "        pass\n"
            "assert 'usage' in out.getvalue(), out.getvalue()\n"
            f"print({LOADED})")
    assert _python(code, PYTHONHASHSEED="0") == "[]"


def test_hash_seed_reexec_comes_before_any_numerical_import():
    """Without PYTHONHASHSEED the console re-executes itself first: at that moment nothing heavy
    is imported (``os.execve`` is replaced by a probe that reports and stops)."""
    code = ("import os, sys\n"
            f"def probe(*args):\n    print({LOADED}, args[1][1:3])\n    sys.exit(0)\n"
            "os.execve = probe\n"
            "from svi_bench.benchmarks.console import main\n"
            "main(['list'])\n")
    assert _python(code, PYTHONHASHSEED=None) == "[] ['-m', 'svi_bench.benchmarks']"


def _list(capsys) -> dict[str, str]:
    """``svi-bench list`` in this process: {model: its dimension column}."""
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    return {m[1]: m[2] for m in re.finditer(r"^(\w+) +(\S+) ", out, re.M) if m[1] in REGISTRY}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """The record in ``tmp_path``; this process's JAX cache stays where it is (a miss would
    point it at ``tmp_path`` for every later test)."""
    monkeypatch.setattr(jax_setup, "DEFAULT_CACHE_DIR", tmp_path)
    monkeypatch.setattr(jax_setup, "configure_jax", lambda *args, **kwargs: tmp_path / "jax")
    return latent_record.record_path()


def test_the_console_command_keeps_its_record_in_svi_bench_cache(tmp_path):
    """As a user runs it: the record under ``$SVI_BENCH_CACHE``, the same listing from it, and a
    corrupt record rebuilt."""
    env = {**os.environ, "SVI_BENCH_CACHE": str(tmp_path)}
    runs = []
    for corrupt in (None, None, "{not json"):
        if corrupt is not None:
            (tmp_path / latent_record.FILENAME).write_text(corrupt)
        proc = subprocess.run([str(CONSOLE), "list"], capture_output=True, text=True, env=env,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(proc.stdout)
        doc = json.loads((tmp_path / latent_record.FILENAME).read_text())
        assert {m: e["dim"] for m, e in doc["models"].items()} == DIMS
    assert runs[0] == runs[1] == runs[2]


def test_list_records_the_dimensions_and_uses_the_record(cache, capsys):
    assert {m: int(d) for m, d in _list(capsys).items()} == DIMS
    doc = json.loads(cache.read_text())
    assert {m: e["dim"] for m, e in doc["models"].items()} == DIMS
    dims = latent_record.LatentDims()
    assert [dims.dim(spec) for spec in REGISTRY.values()] == list(DIMS.values())
    assert (dims.hits, dims.misses) == (len(DIMS), 0)
    doc["models"]["coin"]["dim"] = 3  # well-formed but wrong: it breaks its seal, a miss
    cache.write_text(json.dumps(doc))
    assert _list(capsys)["coin"] == "1"
    doc = json.loads(cache.read_text())
    doc["models"]["coin"]["identity"]["source_hash"] = "0" * 16  # the model changed: recomputed
    cache.write_text(json.dumps(doc))
    assert _list(capsys)["coin"] == "1"
    assert json.loads(cache.read_text())["models"]["coin"]["dim"] == 1


@pytest.mark.parametrize("corrupt", ["{not json", "[]", '{"format": 1, "models": []}',
                                     '{"format": 1, "models": {"coin": {"dim": "one"}}}',
                                     '{"format": 1, "models": {"coin": {"dim": true}}}',
                                     '{"format": 0, "models": {}}', ""])
def test_a_corrupt_record_is_ignored_and_rebuilt(cache, capsys, corrupt):
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(corrupt)
    assert {m: int(d) for m, d in _list(capsys).items()} == DIMS
    assert {m: e["dim"] for m, e in json.loads(cache.read_text())["models"].items()} == DIMS


def test_list_works_where_the_record_cannot_be_written(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    monkeypatch.setattr(jax_setup, "DEFAULT_CACHE_DIR", blocker)
    assert {m: int(d) for m, d in _list(capsys).items()} == DIMS


def test_abstract_latent_info_equals_the_initialised_one():
    """``jax.eval_shape`` of NumPyro's initialisation gives what initialising it gives (here an
    improper flat prior, which cannot be sampled); a simplex is one dimension less than its
    shape."""
    spec = REGISTRY["correlated_gaussian"]
    ds = spec.make_data()
    assert latent_info(spec.model, ds.model_kwargs, abstract=True) == latent_info(
        spec.model, ds.model_kwargs)
    spec = REGISTRY["dirichlet_categorical"]
    info = latent_info(spec.model, spec.make_data().model_kwargs, abstract=True)
    assert info.sites == ("theta",) and info.shapes == {"theta": (12,)}
    assert info.unconstrained_dim == 11


def _no_valid_point(y):
    """Finite shapes, but no initial point has a finite density."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.factor("never", -jnp.inf)
    numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def test_check_init_keeps_the_check_of_the_initial_point():
    """``check_init`` (what the runner uses): the abstract shapes, but a model without a valid
    initial point raises NumPyro's own error, as the concrete initialisation does."""
    import numpy as np

    kwargs = {"y": np.float32(1.0)}
    assert latent_info(_no_valid_point, kwargs, abstract=True).unconstrained_dim == 1
    for how in ({}, {"abstract": True, "check_init": True}):
        with pytest.raises(RuntimeError, match="Cannot find valid initial parameters"):
            latent_info(_no_valid_point, kwargs, **how)
    spec = REGISTRY["linreg_outliers"]
    ds = spec.make_data()
    assert latent_info(spec.model, ds.model_kwargs, abstract=True, check_init=True) == \
        latent_info(spec.model, ds.model_kwargs)


def test_run_latent_info_is_recorded_reused_and_never_trusted_when_corrupt(tmp_path, monkeypatch):
    """The grid's latent info comes from a record on a warm run (nothing traced), equals the
    checked computation, is keyed by the data's bytes, and a corrupt record is a miss."""
    import numpy as np

    spec = REGISTRY["linreg_outliers"]
    kwargs = dict(spec.make_data().model_kwargs)
    first = latent_record.run_latent_info(spec, kwargs, tmp_path)
    assert first == latent_info(spec.model, kwargs)
    (path,) = (tmp_path / latent_record.INFO_DIR).glob("*.json")
    calls = []
    monkeypatch.setattr("svi_bench.benchmarks.inference.introspect.latent_info",
                        lambda *a, **k: calls.append(1) or first)
    assert latent_record.run_latent_info(spec, kwargs, tmp_path) == first and not calls
    other = {**kwargs, "y": np.asarray(kwargs["y"]) + 1.0}
    assert latent_record.run_latent_info_key(spec, other) != path.stem
    path.write_text("{not json")
    assert latent_record.run_latent_info(spec, kwargs, tmp_path) == first and calls == [1]


def _forged(doc: dict, **change) -> dict:
    """``doc`` changed and sealed again (as a bug writing a wrong entry would), or not."""
    reseal = change.pop("reseal", True)
    doc = {**{k: v for k, v in doc.items() if k != "seal"}, **change}
    return {**doc, "seal": latent_record.seal(doc)} if reseal else {**doc, "seal": "x"}


@pytest.mark.parametrize("change", [
    {"unconstrained_dim": 3, "reseal": False},  # latent_dim 3 for a 1-D model, edited by hand
    {"unconstrained_dim": 3},  # ... or sealed: more dimensions than latent values
    {"sites": ["latent_fairness", "other"]},  # a site without a shape: a KeyError downstream
    {"shapes": {"latent_fairness": [-1]}},
    {"key": "0" * 24},  # another model's record copied here
    {"unconstrained_dim": "1"},
])
def test_a_wrong_latent_info_record_is_a_miss(tmp_path, monkeypatch, change):
    """A well-formed record that does not fit the model is recomputed, never trusted."""
    spec = REGISTRY["coin"]
    kwargs = dict(spec.make_data().model_kwargs)
    first = latent_record.run_latent_info(spec, kwargs, tmp_path)
    (path,) = (tmp_path / latent_record.INFO_DIR).glob("*.json")
    doc = json.loads(path.read_text())
    assert latent_record.checked_latent_info(doc, path.stem) == first  # the honest record
    path.write_text(json.dumps(_forged(doc, **change)))
    calls = []
    monkeypatch.setattr("svi_bench.benchmarks.inference.introspect.latent_info",
                        lambda *a, **k: calls.append(1) or first)
    assert latent_record.run_latent_info(spec, kwargs, tmp_path) == first and calls == [1]
    assert first.unconstrained_dim == 1 and json.loads(path.read_text()) == doc  # rewritten


def test_an_invalid_model_is_never_recorded(tmp_path):
    import numpy as np

    spec = dataclasses.replace(REGISTRY["coin"], model=_no_valid_point)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="Cannot find valid initial parameters"):
            latent_record.run_latent_info(spec, {"y": np.float32(1.0)}, tmp_path)
    assert not list(tmp_path.rglob("*.json"))


def test_a_model_imports_only_its_own_module():
    """The registry imports a built-in model's module when its spec is read: ``linreg_outliers``
    alone does not import flax (``bnn`` does); every name is listed without importing any."""
    code = ("import sys\nfrom svi_bench.models import REGISTRY\n"
            "names = list(REGISTRY)\nassert 'bnn' in REGISTRY and len(REGISTRY) == len(names)\n"
            "assert not any(m.startswith('svi_bench.models.') and m.split('.')[-1] in names\n"
            "               for m in sys.modules)\n"
            "assert REGISTRY['linreg_outliers'].name == 'linreg_outliers'\n"
            f"print({LOADED})")
    assert "flax" not in _python(code)
    assert [spec.name for spec in REGISTRY.values()] == list(REGISTRY)
