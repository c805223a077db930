"""The Method protocol and registry (``benchmarks.methods``): built-ins are registrations, names
resolve or fail naming the valid ones, declarations are checked, the contract bites."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.methods import Method, RunResult, registry
from svi_bench.benchmarks.methods.contract import check_method, known_posteriors
from svi_bench.benchmarks.methods.numpyro_guides import AUTOGUIDES
from svi_bench.benchmarks.scoring.verdict import LEVELS
from svi_bench.models import REGISTRY
from svi_bench.models.names import NAME_RULE


def test_builtin_methods_are_registrations_in_the_grid_order():
    coin = REGISTRY["coin"]
    assert registry.methods_for(coin)[:10] == ["nuts", "nuts:dense",
                                               *(f"manual:{g}" for g in coin.guides), *AUTOGUIDES]
    assert registry.baseline() == "nuts"
    assert registry.resolve("nuts").family == "mcmc" and registry.resolve("nuts").baseline
    assert {registry.resolve(m).family for m in AUTOGUIDES} == {"vi"}
    assert registry.resolve("manual:beta").column == "manual"
    assert not registry.resolve("autodais").psis and registry.resolve("autonormal").psis
    assert {NUTSSettings, SVISettings} <= set(registry.settings_types())


def test_an_unknown_name_names_the_valid_ones():
    with pytest.raises(registry.MethodError, match=r"unknown method 'laplace'; valid: nuts, "
                                                   r"manual:<guide of the model>, nuts:dense, autonormal"):
        registry.resolve("laplace")
    assert not registry.is_known("manual:")  # a prefix alone is no method


def test_a_manual_guide_the_model_lacks_is_not_applicable():
    from svi_bench.benchmarks.inference.introspect import LatentInfo

    reason = registry.resolve("manual:nope").applicable(REGISTRY["coin"], LatentInfo((), {}, 1))
    assert reason == "model 'coin' has no manual guide 'nope' (has: beta, normal)"


def test_settings_come_from_the_methods_declared_defaults():
    assert registry.resolve("nuts").settings("quick", "coin") == NUTSSettings(500, 1000, 4)
    paper = registry.resolve("autodais").settings("paper", "hierarchical_linreg")
    assert paper.num_steps == 50000 and paper.guide_options["K"] == 16
    assert registry.resolve("autonormal").settings("paper", "hierarchical_linreg").num_steps == 5000
    with pytest.raises(ValueError, match="unknown profile 'fast'"):
        registry.resolve("nuts").settings("fast", "coin")


def test_the_noncentred_hierarchical_model_runs_with_the_centred_models_settings():
    """``SETTINGS_OF``: the two parameterisations of one posterior are compared at equal
    settings, the per-model overrides included (which the profile defaults alone would not give)."""
    for profile, method in (("quick", "autoiaf"), ("paper", "autodais"), ("paper", "nuts")):
        centred = registry.resolve(method).settings(profile, "hierarchical_linreg")
        assert registry.resolve(method).settings(profile, "hierarchical_linreg_nc") == centred
        assert centred != registry.resolve(method).settings(profile, "coin")


def test_nuts_dense_is_nuts_with_a_dense_mass_matrix_and_nuts_keeps_its_identity():
    """Issue 29: ``nuts:dense`` runs what a user who knows about ``dense_mass=True`` runs; the
    default ``nuts`` (the baseline) keeps the diagonal mass matrix and its rows' identity."""
    from svi_bench.benchmarks.inference.nuts import make_nuts
    from svi_bench.benchmarks.inference.settings import identity

    nuts, dense = registry.resolve("nuts"), registry.resolve("nuts:dense")
    assert dense.family == "mcmc" and not dense.baseline and dense.budget == "num_samples"
    for profile in nuts.defaults:
        for model in ("coin", "hierarchical_linreg"):
            base = nuts.settings(profile, model)
            assert not base.dense_mass
            assert dense.settings(profile, model) == dataclasses.replace(base, dense_mass=True)
    base = nuts.settings("quick", "coin")
    assert "dense_mass" not in identity(base) and "dense_mass" not in repr(base)
    assert identity(dense.settings("quick", "coin"))["dense_mass"] is True
    assert make_nuts(lambda: None, dense.settings("quick", "coin"))._dense_mass is True
    assert make_nuts(lambda: None, base)._dense_mass is False
    with pytest.raises(ValueError, match="dense_mass must be true or false"):
        dataclasses.replace(base, dense_mass="yes").validate()


def _declared(**changes) -> Method:
    base = registry.resolve("autonormal")
    return dataclasses.replace(base, **{"name": "probe", **changes})


def test_a_bad_declaration_is_refused_with_what_is_wrong():
    assert _declared().problems() == []
    assert "lacks the profile(s) paper" in _declared(defaults={"smoke": {}, "quick": {}})\
        .problems()[0]
    assert "description" in _declared(description=" ").problems()[0]
    assert "name" in _declared(name="two words").problems()[0]
    for name in ("a/b", "x" * 101, ""):  # names name artifact files: the model names' rule
        assert NAME_RULE in _declared(name=name).problems()[0]
    assert "budget 'iterations'" in _declared(budget="iterations").problems()[0]
    assert all(registry.resolve(m).budget for m in ("nuts", "autonormal", "pathfinder", "mams",
                                                    "flow:rqs", "manual:beta"))
    with pytest.raises(registry.MethodError, match="already taken"):
        registry.register(dataclasses.replace(registry.resolve("nuts"), baseline=False))
    with pytest.raises(registry.MethodError, match="declares baseline=True"):
        registry.register(_declared(baseline=True))


def test_the_known_posteriors_are_right():
    """The contract's own answers, against plain Monte Carlo / NumPy."""
    (rate, rate_moments), (gauss, gauss_moments) = known_posteriors()
    counts = rate.make_data().model_kwargs["counts"]
    a, b = 2.0 + counts.sum(), 1.0 + len(counts)
    draws = np.random.default_rng(0).gamma(a, 1 / b, size=400_000)
    np.testing.assert_allclose(rate_moments["rate"][0], draws.mean(), rtol=1e-2)
    np.testing.assert_allclose(rate_moments["rate"][1], draws.std(), rtol=1e-2)
    mean, sd = gauss_moments["z"]
    assert mean.shape == sd.shape == (2,) and np.all(sd > 0) and np.all(sd < 1)


def test_nuts_passes_the_contract():
    checks = check_method(registry.resolve("nuts"))
    assert all(c.ok for c in checks), [str(c) for c in checks if not c.ok]
    assert any(c.name.endswith("checkpoints") for c in checks)  # its prefixes are checked too


@pytest.mark.parametrize(("alter", "words"), [
    (lambda results: results[:1], "expected a tuple of 2"),
    (lambda results: tuple(results)[::-1], "grad_evals fall"),
])
def test_broken_checkpoints_fail_the_contract(alter, words):
    """A method's ``checkpoints`` must give one valid result per budget, costs growing."""
    nuts = registry.resolve("nuts")

    def checkpoints(*args, **kwargs):
        run = nuts.checkpoints(*args, **kwargs)
        return lambda keys: alter(run(keys))

    checks = check_method(dataclasses.replace(nuts, name="broken", checkpoints=checkpoints))
    bad = [c for c in checks if not c.ok and not c.skipped]
    assert bad and all(c.name.endswith("checkpoints") for c in bad), [str(c) for c in bad]
    assert any(words in c.message for c in bad), [str(c) for c in bad]


_RUNS: dict[str, RunResult] = {}


def _wrapped(name: str, alter) -> Method:
    """AutoNormal with its result altered by ``alter(result) -> result`` (each model's AutoNormal
    run made once for all the broken variants)."""
    base = registry.resolve("autonormal")

    def build(spec, data, settings, latent_info, program_key=None):
        def program(keys):
            if spec.name not in _RUNS:
                _RUNS[spec.name] = base.build(spec, data, settings, latent_info)(keys)
            return alter(_RUNS[spec.name])
        return program

    return dataclasses.replace(base, name=name, build=build, checkpoints=None)


def _prior_draws(result: RunResult) -> RunResult:
    rng = np.random.default_rng(0)
    return result._replace(draws={k: rng.normal(0, 5.0, size=v.shape) + 5.0
                                  for k, v in result.draws.items()})


def test_autonormal_passes_the_contract():
    """AutoNormal itself, through the same (cached) runs its broken variants below alter."""
    checks = check_method(_wrapped("autonormal_as_is", lambda result: result))
    assert all(c.ok for c in checks), [str(c) for c in checks if not c.ok]


@pytest.mark.parametrize(("alter", "failed", "words"), [
    (_prior_draws, "agreement", "exact mean"),
    (lambda r: r._replace(draws={k: v[:, 0] for k, v in r.draws.items()}), "result", "shape"),
    (lambda r: r._replace(draws={k: np.repeat(v[:1], 2, axis=0) for k, v in r.draws.items()}),
     "seeds differ", "identical"),
    (lambda r: r._replace(grad_evals=np.zeros(2)), "result", "grad_evals"),
    (lambda r: {"draws": r.draws}, "result", "not a RunResult"),
])
def test_a_broken_method_fails_the_contract_naming_the_check(alter, failed, words):
    checks = check_method(_wrapped("broken", alter))
    bad = [c for c in checks if not c.ok and not c.skipped]
    assert bad and any(c.name.endswith(failed) and words in c.message for c in bad), \
        [str(c) for c in checks]


def test_readme_commands_run_a_method_file_outside_the_repository(tmp_path):
    """The README's "Your own method" commands, verbatim, in a folder outside the repository
    holding only a copy of docs/my_method.py: the contract passes, the grid has its rows beside
    NUTS's with verdicts and netCDF draws, and the report shows the method from the manifest
    even after the method file is deleted."""
    import json
    import os
    import re
    import shlex
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    import arviz as az
    import pandas as pd

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    section = text.split("### Your own method\n", 1)[1].split("\n## ", 1)[0]
    commands = [c for c in re.search(r"```bash\n(.*?)```", section, re.S).group(1).splitlines()
                if c]
    assert [c.split()[:2] for c in commands] == [["svi-bench", "check"], ["svi-bench", "run"],
                                                ["svi-bench", "report"]]
    (tmp_path / "docs").mkdir()
    shutil.copyfile(root / "docs" / "my_method.py", tmp_path / "docs" / "my_method.py")
    env = {**os.environ, "PYTHONHASHSEED": "0", "JAX_PLATFORMS": "cpu", "MPLBACKEND": "Agg"}
    console = Path(sys.executable).with_name("svi-bench")
    outputs = []
    for command in commands:
        if command.split()[1] == "report":  # the report needs the results folder alone
            (tmp_path / "docs" / "my_method.py").unlink()
        done = subprocess.run([str(console), *shlex.split(command)[1:]], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])
        outputs.append(done.stdout)
    assert "all checks passed" in outputs[0] and "FAILED" not in outputs[0]
    res = tmp_path / "my_method_results"
    df = pd.read_parquet(res / "results.parquet")
    assert sorted(set(df["method"])) == ["laplace", "nuts"] and len(df) == 4
    laplace = df[df["method"] == "laplace"]
    assert set(laplace["status"]) == {"ok"} and set(laplace["family"]) == {"vi"}
    assert laplace["verdict"].isin(LEVELS).all()
    assert laplace["w1_max"].notna().all() and (laplace["grad_evals"] > 0).all()
    posterior = az.from_netcdf(res / laplace["artifact"].iloc[0]).posterior
    assert posterior["latent_fairness"].sizes["chain"] == 1
    manifest = json.loads((res / "manifest.json").read_text())
    assert manifest["methods"]["laplace"]["family"] == "vi"
    assert manifest["methods"]["laplace"]["origin"]["kind"] == "file"
    page = (res / "report" / "methods" / "laplace.html").read_text()
    assert "Tierney and Kadane" in page  # the description, from the manifest
