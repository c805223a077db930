"""A model written outside this project joins the suite: one file, one registry line.

The throwaway model below (a Normal mean with a Normal prior, its data written inline, so they
ignore the seed) is written to a temporary .py file, imported from that path, registered with
``models.register`` and held to ``models.contract.check_spec``. Deliberately broken variants
fail with messages that name the fix. Registration is undone after each test.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

from svi_bench import models  # noqa: E402
from svi_bench.models import Dataset  # noqa: E402
from svi_bench.models.contract import (  # noqa: E402
    ContractError,
    assert_spec,
    check_spec,
    model_checks,
)
from svi_bench.models.contract.tools import Context, Fail  # noqa: E402
from svi_bench.models.names import NAME_RULE  # noqa: E402

MODEL_FILE = '''
"""A Normal mean with a Normal(0, 1) prior and unit-variance observations."""

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from numpyro.distributions import constraints

from svi_bench.models import Dataset, ModelSpec

Y = [0.3, 1.1, 0.8, 1.9, 1.2]


def model(y):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    with numpyro.plate("obs", y.shape[0]):
        numpyro.sample("y", dist.Normal(mu, 1.0), obs=y)


def guide(y):
    loc = numpyro.param("loc", 0.0)
    scale = numpyro.param("scale", 1.0, constraint=constraints.positive)
    numpyro.sample("mu", dist.Normal(loc, scale))


def data(seed):
    return Dataset(model_kwargs={"y": jnp.asarray(Y, dtype=jnp.float32)})


def _posterior(ds):
    y = np.asarray(ds.model_kwargs["y"], dtype=np.float64)
    return y.sum() / (len(y) + 1.0), 1.0 / np.sqrt(len(y) + 1.0)


def exact_sampler(rng, n, ds):
    mean, sd = _posterior(ds)
    return {"mu": rng.normal(mean, sd, size=n)}


def exact_moments(ds):
    mean, sd = _posterior(ds)
    return {"mu": (np.asarray(mean), np.asarray(sd))}


SPEC = ModelSpec(
    name="throwaway_normal_mean",
    description="Normal mean, Normal(0, 1) prior, five observations written inline.",
    source="Written for a test: any free text will do.",
    model=model,
    data=data,
    guides={"normal": guide},
    reference_kind="exact",
    exact_sampler=exact_sampler,
    exact_moments=exact_moments,
    data_uses_seed=False,
)
'''


@pytest.fixture
def model_module(tmp_path):
    """The throwaway model imported from its own file, removed from sys.modules afterwards."""
    path = tmp_path / "throwaway_model.py"
    path.write_text(textwrap.dedent(MODEL_FILE))
    name = "throwaway_model"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before executing: references hash the module's source
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


@pytest.fixture
def registered(model_module):
    """The throwaway model registered for one test, then unregistered."""
    before = dict(models.REGISTRY)
    spec = models.register(model_module.SPEC)
    try:
        yield spec
    finally:
        models.unregister(spec.name)
        assert models.REGISTRY == before


def _by_name(spec) -> dict:
    return {c.name: c for c in check_spec(spec)}


def test_a_model_from_a_file_registers_and_passes_the_contract(registered):
    assert models.get_model("throwaway_normal_mean") is registered
    checks = assert_spec(registered)  # raises ContractError listing failures
    names = {c.name for c in checks}
    assert {"source", "data_seed", "data_dtypes", "guide:normal", "exact_agreement"} <= names
    assert all(c.ok for c in checks)


def test_registration_does_not_leak():
    assert "throwaway_normal_mean" not in models.REGISTRY


def test_a_taken_name_is_refused(registered):
    with pytest.raises(ValueError, match="already registered"):
        models.register(dataclasses.replace(registered, description="another"))
    with pytest.raises(ValueError, match="no registered model"):
        models.unregister("no_such_model")


def test_float64_data_and_a_guide_missing_a_site_fail_with_the_fix(model_module):
    spec = model_module.SPEC

    def data64(seed):
        return Dataset(model_kwargs={"y": np.asarray(model_module.Y, dtype=np.float64)})

    def guide_wrong_site(y):
        import numpyro
        import numpyro.distributions as dist

        numpyro.sample("mean", dist.Normal(numpyro.param("loc", 0.0), 1.0))

    broken = dataclasses.replace(spec, data=data64, guides={"wrong_site": guide_wrong_site})
    checks = _by_name(broken)
    assert not checks["data_dtypes"].ok
    assert "float64" in checks["data_dtypes"].message and "use float32" in checks["data_dtypes"].message
    guide = checks["guide:wrong_site"]
    assert not guide.ok
    assert "does not sample latent site(s) ['mu']" in guide.message
    assert "samples ['mean']" in guide.message and "same name and shape" in guide.message
    assert checks["model_trace"].ok and checks["exact_agreement"].ok  # the rest still checked
    with pytest.raises(ContractError) as err:
        assert_spec(broken)
    assert {c.name for c in err.value.failures} == {"data_dtypes", "guide:wrong_site"}
    assert "use float32" in str(err.value) and "guide:wrong_site" in str(err.value)


def test_a_missing_function_fails_and_a_user_models_seed_use_is_detected(model_module):
    """A user's data that ignore the seed although the spec says otherwise: taken, and said."""
    spec = model_module.SPEC
    checks = _by_name(dataclasses.replace(spec, data_uses_seed=True, exact_moments=None,
                                          source="  "))
    seed = checks["data_seed"]
    assert seed.ok and seed.detected and "taken as data_uses_seed=False" in seed.message
    assert not _by_name(spec)["data_seed"].detected  # declared right: nothing to say
    assert "needs exact_moments" in checks["reference_requirements"].message
    assert not checks["source"].ok and "free text" in checks["source"].message


def _data_check(spec, check):
    ctx = Context(spec)
    ctx.ds = spec.make_data()
    return check(ctx)


@pytest.mark.parametrize("declared", [True, False])
def test_a_built_in_model_must_declare_its_seed_use(declared):
    """The strict rule stays for the suite's own models: a wrong declaration there is a bug."""
    spec = models.REGISTRY["coin" if not declared else "multimodal_2d"]
    assert spec.data_uses_seed is not declared
    with pytest.raises(Fail, match="data_uses_seed=False"):
        _data_check(dataclasses.replace(spec, data_uses_seed=declared), model_checks.data_seed)


def test_a_float64_model_may_have_int64_data(model_module):
    """In 64-bit mode int64 is JAX's own default integer (jnp.asarray([40, 37]))."""
    def data(seed=0, dtype=np.int64):
        return Dataset(model_kwargs={"y": np.asarray(model_module.Y, dtype=np.float64),
                                     "k": np.asarray([40, 37], dtype=dtype)})

    spec = dataclasses.replace(model_module.SPEC, data=data, precision="float64")
    assert _data_check(spec, model_checks.data_dtypes) is None
    assert _data_check(dataclasses.replace(spec, data=lambda seed=0: data(seed, np.int32)),
                       model_checks.data_dtypes) is None
    with pytest.raises(Fail, match=r"int64 arrays \(k\): use int32"):
        _data_check(dataclasses.replace(spec, precision="float32",
                                        data=lambda seed=0: Dataset(
                                            {"k": np.asarray([40, 37], dtype=np.int64)})),
                    model_checks.data_dtypes)


@pytest.mark.parametrize("changes, named", [
    ({"name": "m" * 101}, "(101 characters)"),
    ({"name": "a/b"}, "name 'a/b'"),
    ({"name": ".hidden"}, "name '.hidden'"),
    ({"guides": {"a/b": None}}, "guide name 'a/b'"),
])
def test_a_name_that_cannot_be_a_file_name_is_refused_with_the_rule(model_module, changes,
                                                                     named):
    if "guides" in changes:
        changes = {"guides": {"a/b": model_module.SPEC.guides["normal"]}}
    check = _by_name(dataclasses.replace(model_module.SPEC, **changes))["name"]
    assert not check.ok and named in check.message
    assert NAME_RULE in check.message and "at most 100 characters" in check.message


def test_the_longest_allowed_name_passes(model_module):
    spec = dataclasses.replace(model_module.SPEC, name="m" * 100,
                               guides={"v1.2:normal-x": model_module.SPEC.guides["normal"]})
    assert _by_name(spec)["name"].ok


def test_a_model_that_raises_is_a_failed_check_and_dependants_are_skipped(model_module):
    def broken_data(seed):
        raise RuntimeError("no data today")

    checks = _by_name(dataclasses.replace(model_module.SPEC, data=broken_data))
    assert not checks["data"].ok and "RuntimeError: no data today" in checks["data"].message
    assert checks["model_trace"].skipped and "needs data" in checks["model_trace"].message
    assert checks["guide:normal"].skipped
    assert checks["name"].ok and checks["functions"].ok
