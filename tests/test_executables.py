"""The executable cache: a warm run loads the cell's compiled program instead of tracing it, with
bit-identical results; a corrupt or foreign entry is ignored and recompiled; ``cache`` names only
a cache that served the program itself."""

from __future__ import annotations

import json
import os
import pickle

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest
from numpyro.infer.autoguide import AutoNormal

from svi_bench.benchmarks.inference import executables, jax_setup
from svi_bench.benchmarks.inference.nuts import run_nuts
from svi_bench.benchmarks.inference.settings import NUTSSettings, SVISettings
from svi_bench.benchmarks.inference.svi import fit_svi

jax_setup.configure_jax()

DATA = {"y": np.array([0.3, -1.2, 0.8, 2.1], dtype=np.float32)}
SVI = SVISettings(num_steps=50, num_particles=2, learning_rate=0.05, num_draws=20,
                  final_elbo_particles=10)
NUTS = NUTSSettings(num_warmup=20, num_samples=20, num_chains=2)
KEY = {"model": "toy", "source_hash": "test", "data_hash": executables.kwargs_hash(DATA)}


def toy(y=None):
    mu = numpyro.sample("mu", dist.Normal(0.0, 1.0))
    numpyro.sample("obs", dist.Normal(mu, 1.0), obs=y)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """A private cache for this module (SVI and NUTS tests share it: a fresh compile is slow)."""
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(jax_setup, "DEFAULT_CACHE_DIR", root)
        mp.setattr(jax_setup, "_cache_root", None)
        yield root / "executables"


def _keys(n: int = 2) -> jax.Array:
    return jax.vmap(jax.random.PRNGKey)(np.arange(n, dtype=np.uint32))


def _fit(program_key=KEY):
    return fit_svi(_keys(), toy, lambda: AutoNormal(toy), DATA, ("mu",), SVI,
                   program_key=program_key)


def _same_svi(a, b) -> None:
    assert np.array_equal(a.losses, b.losses)
    assert np.array_equal(a.draws["mu"], b.draws["mu"])
    assert np.array_equal(a.particle_elbos, b.particle_elbos)


@pytest.fixture(scope="module")
def cold_fit(cache_dir):
    fit = _fit()
    assert fit.cache == ""  # compiled afresh (a copy JAX loads from its cache cannot be stored)
    return fit


def _svi_entry(cache_dir):
    text = executables.key_text(
        executables.identity("svi", KEY, toy, SVI, sites=("mu",), extra_sites=()), (_keys(),))
    path = executables.entry_path(text)
    assert path.parent == cache_dir and path.is_file()
    return path


def test_warm_svi_loads_the_executable_with_identical_results(cache_dir, cold_fit):
    _svi_entry(cache_dir)
    warm = _fit()
    assert warm.cache == executables.EXECUTABLE and warm.cache_hit
    _same_svi(cold_fit, warm)


def test_a_corrupt_entry_is_recompiled_with_identical_results(cache_dir, cold_fit):
    entry = _svi_entry(cache_dir)
    entry.write_bytes(entry.read_bytes()[: entry.stat().st_size // 2])  # a killed copy, say
    again = _fit()
    assert again.cache == ""
    assert "unusable entry" in executables.last_problem()
    _same_svi(cold_fit, again)
    warm = _fit()  # the recompiled entry replaced the bad one
    assert warm.cache == executables.EXECUTABLE
    _same_svi(cold_fit, warm)


def _tiny(x):
    return jnp.sin(x) * 2.0


@pytest.mark.parametrize("damage", [b"", b"not a pickle", pickle.dumps({"key": "x"}),
                                    pickle.dumps([1, 2])])
def test_any_unusable_entry_is_ignored(cache_dir, damage):
    x = jnp.arange(3.0)
    ident = {"test": "tiny"}
    executables.entry_path(executables.key_text(ident, (x,))).parent.mkdir(exist_ok=True)
    executables.entry_path(executables.key_text(ident, (x,))).write_bytes(damage)
    compiled, _, cache = executables.load_or_compile(jax.jit(_tiny), (x,), ident)
    assert cache == "" and executables.last_problem()
    assert np.array_equal(compiled(x), _tiny(x))
    compiled, _, cache = executables.load_or_compile(jax.jit(_tiny), (x,), ident)
    assert cache == executables.EXECUTABLE and not executables.last_problem()
    assert np.array_equal(compiled(x), _tiny(x))


def test_the_least_recently_used_entries_go_beyond_the_size_limit(cache_dir, monkeypatch):
    x = jnp.arange(3.0)
    paths = []
    for i, name in enumerate(("old", "used", "new")):
        executables.load_or_compile(jax.jit(_tiny), (x,), {"test": name})
        paths.append(executables.entry_path(executables.key_text({"test": name}, (x,))))
        os.utime(paths[-1], (1000.0 + i, 1000.0 + i))
    executables.load_or_compile(jax.jit(_tiny), (x,), {"test": "used"})  # a load marks it used
    old, used, new = paths
    size = new.stat().st_size
    others = sum(p.stat().st_size for p in cache_dir.glob("*.exe")) - 3 * size
    monkeypatch.setenv("SVI_BENCH_EXECUTABLES_MAX_GB", str((others + 2.5 * size) / 1e9))
    executables.load_or_compile(jax.jit(_tiny), (x,), {"test": "newest"})  # stores one more
    assert not old.exists() and not new.exists()  # the two used longest ago
    assert used.exists()
    assert executables.entry_path(executables.key_text({"test": "newest"}, (x,))).exists()


def test_an_entry_stored_for_another_key_is_not_loaded(cache_dir):
    x = jnp.arange(3.0)
    executables.load_or_compile(jax.jit(_tiny), (x,), {"test": "a"})
    a = executables.entry_path(executables.key_text({"test": "a"}, (x,)))
    b = executables.entry_path(executables.key_text({"test": "b"}, (x,)))
    b.write_bytes(a.read_bytes())
    _, _, cache = executables.load_or_compile(jax.jit(_tiny), (x,), {"test": "b"})
    assert cache == "" and "another key" in executables.last_problem()


def test_without_a_program_key_nothing_is_stored(cache_dir):
    before = set(cache_dir.glob("*.exe"))
    fit = _fit(program_key=None)
    assert fit.cache != executables.EXECUTABLE
    assert set(cache_dir.glob("*.exe")) == before


def test_warm_nuts_loads_the_executable_with_identical_results(cache_dir):
    cold = run_nuts(_keys(), toy, DATA, ("mu",), NUTS, program_key=KEY)
    warm = run_nuts(_keys(), toy, DATA, ("mu",), NUTS, program_key=KEY)
    assert cold.cache == "" and warm.cache == executables.EXECUTABLE
    for a, b in ((cold.draws["mu"], warm.draws["mu"]), (cold.num_steps, warm.num_steps),
                 (cold.energy, warm.energy), (cold.diverging, warm.diverging)):
        assert np.array_equal(a, b)


def test_the_key_covers_what_changes_the_program(monkeypatch):
    ident = executables.identity("svi", KEY, toy, SVI, sites=("mu",), extra_sites=())
    base = executables.key_text(ident, (_keys(),))
    assert executables.key_text(ident, (_keys(),)) == base  # deterministic
    assert executables.key_text(ident, (_keys(3),)) != base  # input shapes
    other = SVISettings(**{**SVI.__dict__, "num_steps": 60})
    assert executables.key_text(
        executables.identity("svi", KEY, toy, other, sites=("mu",), extra_sites=()),
        (_keys(),)) != base
    for key in ({**KEY, "data_hash": "x"}, {**KEY, "source_hash": "x"}, {**KEY, "method": "y"}):
        assert executables.key_text(
            executables.identity("svi", key, toy, SVI, sites=("mu",), extra_sites=()),
            (_keys(),)) != base
    assert executables.key_text(
        executables.identity("svi", KEY, toy, SVI, sites=(), extra_sites=("mu",)),
        (_keys(),)) != base  # latent vs deterministic sites are drawn differently
    flags = os.environ.get("XLA_FLAGS")
    monkeypatch.setenv("XLA_FLAGS", f"{flags or ''} --xla_cpu_enable_fast_math=false")
    assert executables.key_text(ident, (_keys(),)) != base
    if flags is None:
        monkeypatch.delenv("XLA_FLAGS")
    else:
        monkeypatch.setenv("XLA_FLAGS", flags)
    monkeypatch.setenv("PYTHONHASHSEED", "1")
    assert executables.key_text(ident, (_keys(),)) != base
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    with jax.enable_x64(True):
        assert executables.key_text(ident, (_keys(),)) != base
    assert executables.kwargs_hash({"y": DATA["y"] + 1}) != executables.kwargs_hash(DATA)
    assert executables.kwargs_hash({"y": DATA["y"].astype(np.float64)}) \
        != executables.kwargs_hash(DATA)


def _salted(salt: float):
    def program(x):  # a new function object: nothing cached in memory, only on disk
        return jnp.sin(x) * 2.0 + salt

    return program


def test_the_jax_cache_counts_only_the_program_itself():
    from jax import monitoring

    salt = float(np.frombuffer(os.urandom(4), dtype=np.uint32)[0])  # a program never seen before
    x = jnp.ones(3)
    _, _, first = jax_setup.compile_timed(jax.jit(_salted(salt)), x)
    assert first == ""  # a new program: compiled
    _, _, second = jax_setup.compile_timed(jax.jit(_salted(salt)), x)
    assert second == jax_setup.JAX_CACHE  # the same program again: JAX's persistent cache

    fresh = _salted(salt + 1.0)

    def traced_with_a_hit(x):
        # what a sub-computation served by the cache while tracing reports
        monitoring.record_event("/jax/compilation_cache/cache_hits")
        return fresh(x)

    _, _, cache = jax_setup.compile_timed(jax.jit(traced_with_a_hit), x)
    assert cache == ""


_CHOLESKY_SCRIPT = """
import json, jax, jax.numpy as jnp, numpy as np
from svi_bench.benchmarks.inference import executables
a = jnp.array([[4.0, 1.0], [1.0, 3.0]])
compiled, _, cache = executables.load_or_compile(
    jax.jit(lambda m: jnp.linalg.cholesky(m) @ jnp.ones(2)), (a,), {"test": "cholesky"})
print(json.dumps([cache, np.asarray(compiled(a)).tolist()]))
"""


def _fresh_process_runs(tmp_path, xla_flags: str = "") -> list[list]:
    """The Cholesky script run twice in fresh processes sharing one store: [cache, value] each."""
    import subprocess
    import sys

    env = {**os.environ, "SVI_BENCH_CACHE": str(tmp_path), "PYTHONHASHSEED": "0",
           "JAX_PLATFORMS": "cpu", "XLA_FLAGS": xla_flags}

    def run() -> list:
        proc = subprocess.run([sys.executable, "-c", _CHOLESKY_SCRIPT], env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return [run(), run()]


def test_a_loaded_program_calling_lapack_runs_in_a_fresh_process(tmp_path):
    """A process that loads a program using LAPACK (AutoMultivariateNormal's Cholesky) without
    ever lowering one must set up jaxlib's LAPACK kernels itself; otherwise it crashes."""
    cold, warm = _fresh_process_runs(tmp_path)
    assert cold[0] != executables.EXECUTABLE and warm[0] == executables.EXECUTABLE
    assert cold[1] == warm[1]


def test_a_process_with_several_cpu_devices_compiles_instead_of_loading(tmp_path):
    """A stored executable loaded by a client with two CPU devices (a reference build on every
    core) expects two shards and refuses a one-device call: such a process neither stores nor
    loads, and runs."""
    cold, warm = _fresh_process_runs(tmp_path, "--xla_force_host_platform_device_count=2")
    assert executables.EXECUTABLE not in (cold[0], warm[0])
    assert cold[1] == warm[1]
    assert not list((tmp_path / "executables").glob("*.exe"))


def test_the_store_is_keyed_by_every_module_its_programs_are_built_from():
    """Every module that stores programs (calls ``executables.identity``), and every suite module
    those import, is in ``PROGRAM_SOURCES``; a study's own program modules are not, so adding one
    does not make the stored grid programs cold."""
    import re
    from pathlib import Path

    folder = Path(executables.__file__).resolve().parent
    sources = set(executables.PROGRAM_SOURCES)
    storing = {p.name for p in folder.glob("*.py") if "executables.identity(" in p.read_text()}
    assert storing and storing <= sources
    imported = set()
    for name in storing:
        text = (folder / name).read_text()
        imported |= {f"{m}.py" for m in re.findall(
            r"from svi_bench\.benchmarks\.inference(?:\.(\w+))? import", text) if m}
        for group in re.findall(r"from svi_bench\.benchmarks\.inference import ([\w, ]+)", text):
            imported |= {f"{m.strip()}.py" for m in group.split(",")}
    assert imported <= sources | {"host_lock.py"}, imported - sources
    assert not {"annealing.py", "early_stopping.py"} & sources


def test_compile_and_run_announces_compiling_then_running():
    from svi_bench.benchmarks.inference import phases

    seen: list[str] = []
    with phases.listening(seen.append):
        executables.compile_and_run(jax.jit(lambda x: x + 1.0), jnp.ones(3))
    executables.compile_and_run(jax.jit(lambda x: x * 2.0), jnp.ones(3))  # no listener: silent
    assert seen == [phases.COMPILING, phases.RUNNING]


def _program_outputs():
    """The grid's SVI program with its particle ELBOs traced in (as a float64 fit has them)."""
    from svi_bench.benchmarks.inference.svi import build_svi_program

    one = build_svi_program(toy, lambda: AutoNormal(toy), DATA, ("mu",), SVI)
    return jax.jit(lambda keys: jax.lax.map(one, keys))(_keys())


def test_a_float32_fit_scores_its_elbos_in_one_float64_program_not_twice():
    from svi_bench.benchmarks.inference.svi import float64_particle_elbos

    fit = _fit(program_key=None)
    losses, draws, elbos32, _, params = _program_outputs()
    # leaving the ELBOs out of the fit's program changes nothing the fit reports
    assert np.array_equal(fit.losses, losses) and np.array_equal(fit.draws["mu"], draws["mu"])
    assert fit.particle_elbos_precision == "float64" and fit.particle_elbos.dtype == np.float64
    expected = float64_particle_elbos(toy, lambda: AutoNormal(toy), DATA, params, _keys(),
                                      SVI.final_elbo_particles)
    assert np.array_equal(fit.particle_elbos, expected)
    assert elbos32.shape == fit.particle_elbos.shape  # traced in: the same number of particles


def test_a_guide_that_cannot_trace_in_64_bits_gets_its_elbos_in_its_own_precision(monkeypatch):
    from svi_bench.benchmarks.inference import svi

    real = svi.float64_particle_elbos

    def no_64_bits(*args, precision="float64", **kwargs):
        if precision == "float64":
            raise TypeError("this guide cannot trace in 64 bits")
        return real(*args, precision=precision, **kwargs)

    monkeypatch.setattr(svi, "float64_particle_elbos", no_64_bits)
    fit = _fit(program_key=None)
    params = _program_outputs()[4]
    assert fit.particle_elbos_precision == "float32" and fit.particle_elbos.dtype == np.float32
    own = real(toy, lambda: AutoNormal(toy), DATA, params, _keys(), SVI.final_elbo_particles,
               precision="float32")
    assert np.array_equal(fit.particle_elbos, own)
