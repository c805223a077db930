"""Compiled programs kept on disk, so a warm run skips tracing, lowering and compiling.

JAX's persistent compilation cache only saves the XLA compile: a hit still traces the NumPyro
program in Python and lowers it to compute its key, which on the paper profile costs seconds per
cell. Here a cell's whole executable is stored (``jax.experimental.serialize_executable``) under
a key made of everything that defines it: the caller's identity of the program (settings hash,
model source and data hashes), the suite's own source that builds programs, the input shapes and
dtypes, the library versions, ``XLA_FLAGS``, the backend and device, the JAX configuration that
changes traced programs (64-bit mode, PRNG) and ``PYTHONHASHSEED``. A warm run loads it and runs
the very same binary, so its results are bit-identical to the cold run's.

Entries are a cache, never results: one file per key in ``$SVI_BENCH_CACHE/executables/``,
written atomically; an entry that cannot be read or loaded is ignored and replaced by a fresh
compile. Loading runs machine code, so only this machine's own cache is read.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import platform
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from svi_bench.benchmarks.artifacts import atomic_write
from svi_bench.benchmarks.inference import host_load, host_lock, jax_setup, phases, program_cost

FORMAT = 1
"""Layout of an entry; a change makes every older entry a miss."""
EXECUTABLE = "executable"
"""``cache`` value: the serialised executable was loaded (no tracing, lowering or compiling)."""
IN_PROCESS = "process"
"""``cache`` value: the executable was got earlier by this process (``keep_in_process``)."""
_JAX_CONFIG = ("jax_enable_x64", "jax_default_prng_impl", "jax_threefry_partitionable",
               "jax_default_matmul_precision", "jax_numpy_dtype_promotion",
               "jax_use_simplified_jaxpr_constants")
"""JAX options whose value changes the traced program of the same Python code."""
_last_problem = ""
_kept: dict[str, Any] | None = None


def keep_in_process() -> None:
    """From now on, reuse in this process every executable got with an identity. The perf suite
    calls a method's whole cell program round after round and times only its run; the grid never
    calls this (each of its cells gets, and reports, its own compile or load)."""
    global _kept
    if _kept is None:
        _kept = {}


def identity(program: str, program_key: Mapping[str, Any] | None, model: Callable,
             settings: Any, **parts: Any) -> dict[str, str] | None:
    """The identity of one of the suite's programs, or None (no caching) without the caller's
    ``program_key``: the caller's key plus what this module can see for itself (the program's
    kind, the model function's name, the settings, the sites drawn)."""
    if program_key is None:
        return None
    name = f"{getattr(model, '__module__', '')}.{getattr(model, '__qualname__', repr(model))}"
    return {**{k: str(v) for k, v in program_key.items()}, "program": program, "model_fn": name,
            "settings": repr(settings), **{k: repr(tuple(v)) for k, v in parts.items()}}


def executables_dir() -> Path:
    """Where entries live: ``<cache root>/executables`` (the root of ``configure_jax``)."""
    return jax_setup.cache_root() / "executables"


#: The modules the stored programs (``svi.fit_svi``, ``nuts.run_nuts`` and the references built
#: with it, ``anytime.fit_svi_checkpoints``) are made from. Only these key the store: a study's
#: own programs elsewhere in this folder (annealing, early stopping, ...) are not stored, and
#: adding or editing one must not make every stored grid program cold. The method that built a
#: program (``benchmarks.methods``, a user's method file) keys it through the caller's identity
#: (``Method.source_hash``).
PROGRAM_SOURCES = ("anytime.py", "executables.py", "jax_setup.py", "nuts.py", "settings.py",
                   "svi.py")


@cache
def suite_source_hash() -> str:
    """Hash of the suite code that builds stored programs (``PROGRAM_SOURCES`` and the models'
    shared ``base``): an edit there changes the program, so it must change the key. A model's
    own module is the caller's part (its ``source_hash``), so editing one model leaves the other
    models' entries valid."""
    from svi_bench.models import base

    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for path in [*(here / name for name in PROGRAM_SOURCES), Path(base.__file__).resolve()]:
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def kwargs_hash(model_kwargs: Mapping[str, Any]) -> str:
    """Hash of a model's keyword data (names, dtypes, shapes and bytes): a program closes over
    its data as constants, so other data is another program."""
    import numpy as np

    h = hashlib.sha256()
    for name in sorted(model_kwargs):
        value = np.asarray(model_kwargs[name])
        h.update(f"{name}|{value.dtype}|{value.shape}|".encode())
        h.update(repr(value.tolist()).encode() if value.dtype == object
                 else np.ascontiguousarray(value).tobytes())
    return h.hexdigest()[:16]


def _version(distribution: str) -> str:
    """Installed version of a library a model's program may use (flax: the BNN), or ""."""
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def _avals(args: tuple) -> str:
    import jax

    leaves, tree = jax.tree_util.tree_flatten(args)
    return f"{tree}|" + ";".join(repr(jax.typeof(leaf)) for leaf in leaves)


def key_text(identity: Mapping[str, Any], args: tuple) -> str:
    """The full description of the executable as canonical JSON (its sha256 is the entry name)."""
    import jax
    import jaxlib
    import numpy as np
    import numpyro

    device = jax.devices()[0]
    return json.dumps({
        "format": FORMAT,
        "identity": {k: str(v) for k, v in identity.items()},
        "suite_source": suite_source_hash(),
        "avals": _avals(args),
        "versions": [jax.__version__, jaxlib.__version__, numpyro.__version__, np.__version__,
                     _version("flax"), platform.python_version()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "backend": [device.platform, device.device_kind, device.client.platform_version,
                    jax.device_count()],
        "config": {name: str(getattr(jax.config, name, None)) for name in _JAX_CONFIG},
        "pythonhashseed": os.environ.get("PYTHONHASHSEED", ""),
    }, sort_keys=True)


def entry_path(text: str) -> Path:
    return executables_dir() / f"{hashlib.sha256(text.encode()).hexdigest()[:40]}.exe"


def last_problem() -> str:
    """Why the last entry was unusable or not stored ("" if it was fine): for messages and tests."""
    return _last_problem


def _prepare_runtime() -> None:
    """Set up what lowering would have set up for a loaded program: jaxlib's CPU LAPACK kernels
    (Cholesky, triangular solves: AutoMultivariateNormal) take their LAPACK functions from
    SciPy only when a program using them is lowered, so a loaded program calling them without
    this crashes the process (jax-ml/jax#29610). Raises if it cannot be done: then no load."""
    from jax._src.lib import lapack

    lapack._lapack.initialize()


def _load(path: Path, text: str) -> Any | None:
    """The stored executable, or None if absent, for another key, corrupt or unloadable."""
    global _last_problem
    if not path.is_file():
        return None
    try:
        _prepare_runtime()
        from jax.experimental.serialize_executable import deserialize_and_load

        entry = pickle.loads(path.read_bytes())
        if entry.get("key") != text:
            raise ValueError("entry was stored for another key")
        compiled = deserialize_and_load(entry["executable"], entry["in_tree"], entry["out_tree"])
        os.utime(path)  # used now: the last to be evicted (``_evict``)
        return compiled
    except Exception as exc:  # a cache must never break a run: compile instead
        _last_problem = f"unusable entry {path.name}: {type(exc).__name__}: {exc}"[:300]
        return None


def _store(path: Path, text: str, compiled: Any) -> None:
    global _last_problem
    try:
        from jax.experimental.serialize_executable import serialize

        blob, in_tree, out_tree = serialize(compiled)
        data = pickle.dumps({"key": text, "executable": blob, "in_tree": in_tree,
                             "out_tree": out_tree}, protocol=pickle.HIGHEST_PROTOCOL)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
        _evict(path.parent, max_bytes())
    except Exception as exc:  # e.g. a program JAX cannot serialise: it simply stays uncached
        _last_problem = f"not stored {path.name}: {type(exc).__name__}: {exc}"[:300]


DEFAULT_MAX_GB = 4.0


def max_bytes() -> int:
    """Size limit of the folder: ``$SVI_BENCH_EXECUTABLES_MAX_GB`` (default 4) gigabytes. Every
    change of code or versions makes new entries (1-10 MB a cell), so old ones must go."""
    try:
        gb = float(os.environ.get("SVI_BENCH_EXECUTABLES_MAX_GB", DEFAULT_MAX_GB))
    except ValueError:
        gb = DEFAULT_MAX_GB
    return int(gb * 1e9)


def _evict(folder: Path, limit: int) -> None:
    """Delete the least recently used entries (stored or loaded longest ago) beyond ``limit``."""
    entries = []
    for path in folder.glob("*.exe"):
        try:
            st = path.stat()
        except OSError:  # removed meanwhile by another process
            continue
        entries.append((st.st_mtime, st.st_size, path))
    total = sum(size for _, size, _ in entries)
    for _, size, path in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        path.unlink(missing_ok=True)
        total -= size


def load_or_compile(program: Callable, args: tuple,
                    identity: Mapping[str, Any] | None) -> tuple[Any, float, str]:
    """``(compiled, compile_s, cache)`` of ``program`` (a jitted function) for ``args``.

    With an ``identity`` (what the caller knows defines the program: settings hash, model source
    and data hashes, the program's role) the stored executable is loaded if there is one;
    otherwise it is traced, lowered and compiled afresh (``jax_setup.compile_fresh``: JAX's own
    cache cannot give a storable executable) and stored. Without an identity it is compiled by
    ``jax_setup.compile_timed``, with JAX's persistent cache. ``compile_s`` is the wall time to get
    the executable either way; ``cache`` is ``"executable"``, ``"jax"`` (JAX's persistent cache
    served the compile of this program itself; only without an identity), ``"process"`` (got
    earlier by this process, after ``keep_in_process``) or ``""`` (compiled).
    """
    global _last_problem
    _last_problem = ""
    import jax

    # A stored executable loaded by a client with several CPU devices expects one shard per
    # device and refuses a single-device call ("Expected args ... to have 2 shards, got: [1]"):
    # such a process (a reference build on every core) compiles, with JAX's own cache.
    if identity is None or jax.local_device_count() > 1:
        return jax_setup.compile_timed(program, *args)
    start = time.perf_counter()
    text = key_text(identity, args)
    if _kept is not None and text in _kept:
        return _kept[text], time.perf_counter() - start, IN_PROCESS
    path = entry_path(text)
    compiled, cache_used = _load(path, text), EXECUTABLE
    if compiled is None:
        compiled, cache_used = jax_setup.compile_fresh(jax_setup.lower(program, *args)), ""
        _store(path, text, compiled)
    if _kept is not None:
        _kept[text] = compiled
    return compiled, time.perf_counter() - start, cache_used


def load_or_compile_after(program: Callable, args: tuple,
                          identity: Mapping[str, Any] | None) -> tuple[Any, float, str]:
    """``load_or_compile`` for a program that follows a run's own in the same call (its float64
    scoring, say): ``last_problem`` still reports the run's program unless this one has a
    problem of its own."""
    global _last_problem
    before = _last_problem
    out = load_or_compile(program, args, identity)
    _last_problem = _last_problem or before
    return out


class Got(NamedTuple):
    """An executable got by ``load_or_compile_measured`` and what getting it cost."""

    compiled: Any
    compile_s: float
    cache: str
    others_share: float  # share of the host's CPU other processes used meanwhile


def load_or_compile_measured(program: Callable, args: tuple,
                             identity: Mapping[str, Any] | None) -> Got:
    """``load_or_compile`` with the share of the host's CPU other processes used while it ran
    (``host_load.others_share``, NaN where it cannot be measured): a compile time is comparable
    across commits only at a similar load."""
    before = host_load.sample()
    compiled, compile_s, cache = load_or_compile(program, args, identity)
    return Got(compiled, compile_s, cache, host_load.others_share(before, host_load.sample()))


class ProgramRun(NamedTuple):
    """One compiled program's run (``compile_and_run``)."""

    out: Any  # host outputs
    compile_s: float
    run_s: float
    cache: str
    others_share: float
    cost: dict[str, float]  # program_cost.COLUMNS: XLA's static cost, the run's peak memory and
    # how busy the rest of the host was while the program compiled


def compile_and_run(program, *args, identity: Mapping[str, Any] | None = None) -> ProgramRun:
    """Get ``program`` (a jitted function) compiled for ``args``, then run it once.

    Returns the host outputs, the time to get the executable (``load_or_compile``: loaded from
    the suite's executable cache when ``identity`` is given and an entry exists) apart from run
    time (the compiled call up to ``block_until_ready``), which cache served the program
    (``"executable"``, ``"jax"`` or ``""``), the share of the host's CPU other processes used
    during the run (``host_load.others_share``: NaN where it cannot be measured), and the
    program's cost (``program_cost``: XLA's analysis, the process's peak memory over the run).
    """
    import jax

    phases.announce(phases.COMPILING)
    compiled, compile_s, cache, compile_others = load_or_compile_measured(program, args, identity)
    cost = program_cost.static_cost(compiled)
    phases.announce(phases.RUNNING)
    with host_lock.timed_section():  # parallel workers: no other timed run on this host meanwhile
        before = host_load.sample()
        with program_cost.PeakMemory() as peak:
            start = time.perf_counter()
            out = jax.block_until_ready(compiled(*args))
            run_s = time.perf_counter() - start
        others = host_load.others_share(before, host_load.sample())
    return ProgramRun(jax.device_get(out), compile_s, run_s, cache, others,
                      {**cost, **peak.columns(), "compile_others_share": compile_others})
