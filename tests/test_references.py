"""Reference posteriors: provenance, gates, and rebuilding what cannot be trusted."""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from svi_bench.benchmarks.inference import jax_setup
from svi_bench.benchmarks.inference.introspect import latent_info
from svi_bench.benchmarks.scoring.references import get_reference, reference_paths
from svi_bench.models import REGISTRY
from tests.test_runner import TOY

jax_setup.configure_jax()


def _build(name, tmp_path, logs, **kw):
    spec = REGISTRY[name] if isinstance(name, str) else name
    ds = spec.make_data()
    key = {"seed": spec.default_data_seed, **spec.size_defaults}
    sites = latent_info(spec.model, ds.model_kwargs).sites
    return get_reference(spec, ds, key, sites, tmp_path, log=logs.append, **kw), spec, key


def test_exact_reference_carries_provenance_and_matches_the_posterior(tmp_path):
    logs: list[str] = []
    ref, spec, key = _build("coin", tmp_path, logs)
    assert ref.ok and ref.kind == "exact"
    draws = ref.draws["latent_fairness"]
    assert abs(draws.mean() - 13 / 22) < 0.003  # Beta(13, 9), not the document's Beta(12, 8)
    prov = json.loads(reference_paths(tmp_path, spec, key)[1].read_text())
    for field in ("data_hash", "source_hash", "versions", "checks", "seed", "method", "built_at"):
        assert field in prov
    assert prov["versions"]["numpyro"]


def test_quadrature_reference_states_its_grid_error(tmp_path):
    ref, _, _ = _build("gamma_concentration", tmp_path, [])
    assert ref.ok, ref.failure
    assert ref.provenance["checks"]["grid_error_sd"] < 0.01


def test_corrupt_or_stale_reference_is_rebuilt_with_a_message(tmp_path):
    logs: list[str] = []
    ref, spec, key = _build("coin", tmp_path, logs)
    npz, meta = reference_paths(tmp_path, spec, key)
    npz.write_bytes(b"garbage")
    rebuilt, _, _ = _build("coin", tmp_path, logs)
    assert any("corrupt" in m for m in logs)
    assert np.array_equal(rebuilt.draws["latent_fairness"], ref.draws["latent_fairness"])
    prov = json.loads(meta.read_text())
    prov["source_hash"] = "0" * 16
    meta.write_text(json.dumps(prov))
    _build("coin", tmp_path, logs)
    assert any("stale (source_hash changed)" in m for m in logs)


def test_a_nuts_reference_that_fails_its_gates_is_stored_as_failed(tmp_path):
    toy_nuts = dataclasses.replace(TOY, reference_kind="nuts")
    ref, spec, key = _build(toy_nuts, tmp_path, [], quality="smoke")
    assert not ref.ok
    assert "retained draws < 10000" in ref.failure
    prov = json.loads(reference_paths(tmp_path, spec, key, "smoke")[1].read_text())
    assert prov["ok"] is False and prov["failed_checks"]
    assert {"max_rhat", "min_ess_bulk", "min_ess_tail", "divergences", "min_bfmi"} <= set(
        prov["checks"])


def test_reference_models_expose_the_models_latent_sites():
    """A reference_model must give draws of exactly the model's latent sites and shapes."""
    import jax
    from numpyro.infer.util import initialize_model

    for spec in REGISTRY.values():
        if spec.reference_model is None:
            continue
        ds = spec.make_data()
        info = latent_info(spec.model, ds.model_kwargs)
        init = initialize_model(jax.random.PRNGKey(0), spec.reference_model,
                                model_kwargs=dict(ds.model_kwargs))
        values = init.postprocess_fn(init.param_info.z)
        for site in info.sites:
            assert site in values, (spec.name, site)
            assert tuple(np.shape(values[site])) == info.shapes[site], (spec.name, site)


def test_reference_command_and_smoke_run_store_the_same_smoke_reference(tmp_path):
    """``reference --quality smoke`` and ``run --profile smoke`` build the smoke reference of a
    NUTS-reference model under one recipe (issue 28: the run compiled with the smoke profile's
    XLA flags, the command without, and the same tag held R-hat 1.3995 or 1.4439)."""
    from svi_bench.benchmarks.scoring import arviz_adapter
    from tests.conftest import run_cli

    folders = {}
    for how, args in (("reference", ("reference", "--model", "linreg_outliers", "--quality",
                                     "smoke")),
                      ("run", ("run", "--profile", "smoke", "--models", "linreg_outliers",
                               "--methods", "autonormal", "--seeds", "1", "--no-progress"))):
        out = tmp_path / how
        proc = run_cli(*args, "--out", str(out),
                       env={"SVI_BENCH_CACHE": str(tmp_path / f"cache-{how}")})
        assert proc.returncode == 0, proc.stderr[-2000:]
        (nc,) = (out / "references").glob("linreg_outliers__*__smoke.nc")
        folders[how] = (arviz_adapter.load_posterior(nc)[0],
                        json.loads(nc.with_suffix(".json").read_text()))
    (ref_draws, ref_prov), (run_draws, run_prov) = folders["reference"], folders["run"]
    assert ref_draws.keys() == run_draws.keys()
    for site in ref_draws:
        np.testing.assert_array_equal(ref_draws[site], run_draws[site])
    for key in ("recipe_hash", "xla_flags", "checks", "settings"):
        assert ref_prov[key] == run_prov[key], key


def _small_full_recipe(monkeypatch, cap: int, budget: float) -> None:
    """The full NUTS recipe shrunk so a test builds it in seconds (the same code path)."""
    from svi_bench.benchmarks.inference.settings import NUTSSettings
    from svi_bench.benchmarks.scoring import reference_builders as rb

    monkeypatch.setitem(rb.NUTS_REFERENCE, "full",
                        (NUTSSettings(num_warmup=250, num_samples=250, num_chains=4), cap))
    monkeypatch.setitem(rb.REFERENCE_BUDGET_S, "full", budget)
    monkeypatch.setattr(rb, "PILOT", NUTSSettings(num_warmup=250, num_samples=250, num_chains=2))


def test_a_full_nuts_reference_records_its_mass_matrix_and_devices_and_can_be_watched(
        tmp_path, monkeypatch):
    """Issue 29: the full builder picks the mass matrix by a pilot of each (effective draws per
    gradient), records the choice, the devices and how the chains ran, and says how it goes."""
    _small_full_recipe(monkeypatch, cap=250, budget=900.0)
    toy_nuts = dataclasses.replace(TOY, reference_kind="nuts")
    lines: list[str] = []
    ref, spec, key = _build(toy_nuts, tmp_path, [], quality="full", progress=lines.append)
    prov = json.loads(reference_paths(tmp_path, spec, key, "full")[1].read_text())
    assert prov["mass_matrix"] in ("dense", "diagonal") and prov["chain_method"] == "parallel"
    assert prov["settings"]["dense_mass"] == (prov["mass_matrix"] == "dense")
    assert prov["devices"] >= 1 and prov["mass_choice"]["dimension"] == 1
    pilot = prov["mass_choice"]["pilot"]
    assert {"diagonal", "dense"} <= set(pilot)
    assert all(p["ess_per_gradient"] > 0 for p in pilot.values())
    assert any("reference pilot of the dense mass matrix" in line for line in lines)
    sampling = [line for line in lines if ": reference sampling:" in line]
    assert sampling[-1].startswith("toy: reference sampling: chains 1-4 on ")
    assert "draws 250/250 a chain, thin not yet decided, about 0 s left" in sampling[-1]
    assert any("warm-up 250/250" in line for line in sampling)


def test_a_reference_that_reaches_its_time_guard_says_so_in_one_line(tmp_path, monkeypatch):
    from svi_bench.benchmarks.scoring.evaluate import REFERENCE_FAILED

    _small_full_recipe(monkeypatch, cap=250_000, budget=0.001)
    toy_nuts = dataclasses.replace(TOY, reference_kind="nuts")
    logs: list[str] = []
    ref, _, _ = _build(toy_nuts, tmp_path, logs, quality="full", progress=lambda text: None)
    assert not ref.ok and "beyond the 0.001 s budget" in ref.failure
    (guard,) = [m for m in logs if "time guard" in m]
    assert guard.startswith("toy: the reference reached its 0.001 s time guard with ")
    assert f"with {ref.provenance['checks']['retained_draws']} retained draws of the 10000 its " \
           "gates need;" in guard
    assert guard.endswith(f'verdicts on it will say "{REFERENCE_FAILED}"')
