"""Per-model precision: declared, applied to every program without leaking, recorded, checked.

The GP model of ``docs/gp_poisson.py`` (a Cholesky of a nearly singular kernel matrix) is the case
with a known answer: float32 round-off changes its log density materially, float64 does not.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax
import numpy as np
import pandas as pd
import pytest

from svi_bench.benchmarks.grid import execution, run_spec, store
from svi_bench.benchmarks.grid.model_sources import MODELS
from svi_bench.benchmarks.grid.profiles import settings_hash
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings, identity
from svi_bench.benchmarks.scoring import references
from svi_bench.models import REGISTRY
from svi_bench.models.contract import check_spec
from svi_bench.models.contract.precision_checks import (
    TOLERANCE,
    compare_precisions,
    precision_scope,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def gp64():
    (spec,) = MODELS.load_file(ROOT / "docs" / "gp_poisson.py")
    assert spec.precision == "float64"
    return spec


@pytest.fixture(scope="module")
def gp32(gp64):
    return dataclasses.replace(gp64, precision="float32")


def test_float32_is_left_out_of_identities_so_old_hashes_stay_valid():
    svi = SVISettings(num_steps=10, num_particles=1, learning_rate=0.1, num_draws=10)
    assert "precision" not in identity(svi)
    assert identity(dataclasses.replace(svi, precision="float64"))["precision"] == "float64"
    key = {"seed": 0}
    assert settings_hash("m", "autonormal", svi, key) != settings_hash(
        "m", "autonormal", dataclasses.replace(svi, precision="float64"), key)


def test_unknown_precision_is_refused_naming_the_valid_ones():
    with pytest.raises(ValueError, match="float32, float64"):
        NUTSSettings(num_warmup=1, num_samples=1, num_chains=1, precision="float16").validate()
    with pytest.raises(ValueError, match="float32, float64"):
        with precision_scope("double"):
            pass
    bad = dataclasses.replace(REGISTRY["coin"], precision="float16")
    settings = next(c for c in check_spec(bad) if c.name == "settings")
    assert not settings.ok and "precision" in settings.message


def test_precision_scope_restores_the_callers_mode():
    assert not jax.config.jax_enable_x64
    with precision_scope("float64"):
        assert jax.numpy.zeros(1).dtype == np.float64
        with precision_scope("float32"):
            assert jax.numpy.zeros(1).dtype == np.float32
        assert jax.numpy.zeros(1).dtype == np.float64
    assert jax.numpy.zeros(1).dtype == np.float32


def test_comparison_flags_the_gp_and_not_a_well_conditioned_model(gp64):
    gp = compare_precisions(gp64)
    assert gp.material, gp.describe()
    assert gp.max_gradient_rel > 3 * TOLERANCE["gradient_rel"]
    coin = compare_precisions(REGISTRY["coin"])
    assert not coin.material, coin.describe()
    assert coin.max_gradient_rel < TOLERANCE["gradient_rel"] / 3


def test_contract_runs_in_the_declared_precision(gp64, gp32):
    # the GP file builds its data with jnp.asarray: float64 arrays inside its precision
    failed = [str(c) for c in check_spec(gp64) if not c.ok]
    assert not failed, failed
    dtypes = next(c for c in check_spec(gp32) if c.name == "data_dtypes")
    assert dtypes.ok  # the same file without the declaration makes float32 data


def _grid(spec, out: Path, overrides=None):
    cells = list(run_spec.plan([spec], ["nuts"], [0], "smoke", overrides or {}))
    results = store.ResultsStore(out)
    execution.run_grid(cells, results)
    return pd.read_parquet(out / "results.parquet")


def test_float64_model_and_float32_model_share_one_process_without_leaking(tmp_path):
    coin = REGISTRY["coin"]
    coin64 = dataclasses.replace(coin, name="coin_float64", precision="float64")
    cells = list(run_spec.plan([coin64, coin], ["nuts"], [0], "smoke"))
    assert [c.settings.precision for c in cells] == ["float64", "float32"]
    results = store.ResultsStore(tmp_path)
    execution.run_grid(cells, results)
    assert not jax.config.jax_enable_x64
    df = pd.read_parquet(tmp_path / "results.parquet").set_index("model")
    assert df.loc["coin_float64", "precision"] == "float64"
    assert df.loc["coin", "precision"] == "float32"
    assert json.loads(df.loc["coin_float64", "settings"])["precision"] == "float64"
    assert (df["status"] == "ok").all(), df["error"].tolist()
    from svi_bench.benchmarks.scoring.arviz_adapter import load_run

    draws64 = load_run(tmp_path / df.loc["coin_float64", "artifact"])[0]
    draws32 = load_run(tmp_path / df.loc["coin", "artifact"])[0]
    assert next(iter(draws64.values())).dtype == np.float64
    assert next(iter(draws32.values())).dtype == np.float32
    # the float32 cell run alone gives the same numbers: nothing leaked from the float64 cell
    alone = _grid(coin, tmp_path / "alone")
    assert alone.loc[0, "std_mean_err_max"] == df.loc["coin", "std_mean_err_max"]


def test_set_precision_overrides_the_declaration_and_keys_the_run(gp64):
    (declared,) = run_spec.plan([gp64], ["nuts"], [0], "smoke")
    (override,) = run_spec.plan([gp64], ["nuts"], [0], "smoke", {"precision": "float32"})
    assert override.settings.precision == "float32"
    assert override.hash != declared.hash


def test_float32_reference_failure_names_precision_and_float64_does_better(gp64, gp32, tmp_path):
    """End to end on the smoke reference (cheap NUTS, 4 chains): in float32 the GP's chains
    diverge and the failure message suggests float64; in float64 they mix."""
    logs: list[str] = []
    refs = {}
    for spec in (gp32, gp64):
        with precision_scope(spec.precision):
            ds = spec.make_data()
            refs[spec.precision] = references.get_reference(
                spec, ds, spec.data_key(), ("length_scale", "amplitude", "f_tilde"),
                tmp_path, quality="smoke", log=logs.append)
    f32, f64 = refs["float32"], refs["float64"]
    assert not f32.ok
    assert 'precision="float64"' in f32.failure, f32.failure
    assert "precision" not in f64.failure
    checks32, checks64 = f32.provenance["checks"], f64.provenance["checks"]
    assert checks64["divergences"] < checks32["divergences"]
    assert f64.provenance["precision"] == "float64"
    assert references.reference_paths(tmp_path, gp64, gp64.data_key(), "smoke", "float64")[0] \
        .name.endswith("__smoke__float64.nc")
