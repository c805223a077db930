"""Reference chains (``inference.reference_chains``): in parallel across the host's CPU devices,
with the same draws whatever the number of devices."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from svi_bench.benchmarks.inference.reference_chains import host_device_flags

_DRAW = """
import sys, numpy as np, jax
from svi_bench.benchmarks.inference.reference_chains import ReferenceChains
from svi_bench.benchmarks.inference.settings import NUTSSettings
from svi_bench.models import REGISTRY
spec = REGISTRY["linreg_outliers"]
ds = spec.make_data()
settings = NUTSSettings(num_warmup=50, num_samples=50, num_chains=4, dense_mass=True)
chains = ReferenceChains(spec.model, ds.model_kwargs, ("theta",), settings,
                         jax.random.split(jax.random.PRNGKey(3), 4))
chains.warm_up(50)
chunk = chains.draw(50)
np.save(sys.argv[1], chunk.draws["theta"])
print(chains.devices, chunk.draws["theta"].shape)
"""


def _draw(tmp_path, devices: int) -> tuple[str, np.ndarray]:
    out = tmp_path / f"theta_{devices}.npy"
    env = {**os.environ, "XLA_FLAGS": host_device_flags("", devices), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run([sys.executable, "-c", _DRAW, str(out)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip(), np.load(out)


def test_chains_run_on_every_device_and_draw_the_same_whatever_their_number(tmp_path):
    one, draws_one = _draw(tmp_path, 1)
    two, draws_two = _draw(tmp_path, 2)
    assert one == "1 (4, 50)" and two == "2 (4, 50)"
    np.testing.assert_array_equal(draws_one, draws_two)


def test_the_device_flag_is_added_once_and_a_users_count_kept():
    assert host_device_flags("", 2) == "--xla_force_host_platform_device_count=2"
    assert host_device_flags("--xla_backend_optimization_level=0", 3) == (
        "--xla_backend_optimization_level=0 --xla_force_host_platform_device_count=3")
    mine = "--xla_force_host_platform_device_count=1"
    assert host_device_flags(mine, 8) == mine


def test_draws_do_not_depend_on_how_the_iterations_are_split_into_calls():
    import jax

    from svi_bench.benchmarks.inference.reference_chains import ReferenceChains
    from svi_bench.benchmarks.inference.settings import NUTSSettings
    from svi_bench.models import REGISTRY

    spec = REGISTRY["linreg_outliers"]
    ds = spec.make_data()
    settings = NUTSSettings(num_warmup=40, num_samples=40, num_chains=2)
    draws = []
    for lengths in ((20, 20), (40,)):
        chains = ReferenceChains(spec.model, ds.model_kwargs, ("theta",), settings,
                                 jax.random.split(jax.random.PRNGKey(5), 2))
        chains.warm_up(40)
        draws.append(np.concatenate([chains.draw(n).draws["theta"] for n in lengths], axis=1))
        assert chains.drawn == 40 and chains.gradients > 0
    np.testing.assert_array_equal(*draws)
