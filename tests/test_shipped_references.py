"""The references shipped with the suite (``models/references/``) match the current models.

A model, data or recipe change that forgets ``svi-bench reference --model all --ship`` fails here,
so a fresh machine never silently rebuilds a long NUTS reference.
"""

from __future__ import annotations

import json
import warnings

import pytest

from svi_bench.benchmarks.scoring.references import (
    REFERENCE_SEED,
    SHIPPED_DIR,
    expected_provenance,
    load_reference,
    reference_paths,
)
from svi_bench.models import REGISTRY

#: Shipped references that fail a gate, with the failure every verdict on them names (none: bnn's,
#: which had 5 divergences at target_accept_prob 0.98 after 2000 warm-up steps, passes at 0.995
#: after 4000). Any failure not listed here fails this test.
KNOWN_FAILURES: dict[str, str] = {}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_built_in_model_ships_a_current_passing_reference(name):
    spec = REGISTRY[name]
    key = spec.data_key()
    draws_path, json_path = reference_paths(SHIPPED_DIR, spec, key, "full")
    expected = expected_provenance(spec, spec.data_for(key), key, REFERENCE_SEED, "full")
    ref, why = load_reference(draws_path, json_path, expected)
    assert ref is not None, (
        f"{why}; regenerate with `svi-bench reference --model {name} --ship` and commit "
        f"{draws_path.parent.name}/{draws_path.stem}.*")
    if name in KNOWN_FAILURES:
        assert not ref.ok and KNOWN_FAILURES[name] in ref.failure, ref.failure
    else:
        assert ref.ok, f"shipped reference of {name} failed its checks: {ref.failure}"


def test_shipped_references_open_in_arviz_with_their_provenance():
    import arviz as az

    paths = sorted((SHIPPED_DIR / "references").glob("*.nc"))
    assert len(paths) >= len(REGISTRY)
    for path in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            idata = az.from_netcdf(str(path))
        provenance = json.loads(idata.posterior.attrs["provenance"])
        assert provenance == json.loads(path.with_suffix(".json").read_text())
        assert set(idata.posterior.data_vars) and idata.posterior.sizes["chain"] == 1


def test_a_stale_shipped_reference_is_reported_not_used(tmp_path):
    """Only data, source and recipe hashes decide; a changed hash makes the reference stale."""
    spec = REGISTRY["coin"]
    key = spec.data_key()
    draws_path, json_path = reference_paths(SHIPPED_DIR, spec, key, "full")
    expected = expected_provenance(spec, spec.data_for(key), key, REFERENCE_SEED, "full")
    ref, _ = load_reference(draws_path, json_path, {**expected, "source_hash": "0" * 16})
    assert ref is None
    versions_only = json.loads(json_path.read_text())
    versions_only["versions"] = {"numpyro": "0.0.1"}
    (tmp_path / "r.json").write_text(json.dumps(versions_only))
    ref, why = load_reference(draws_path, tmp_path / "r.json", expected)
    assert ref is not None, why
