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
