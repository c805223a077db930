"""Process set-up for reproducible, cached compiles: CPU by default, a fixed hash seed, JAX's cache.

NumPyro's ELBO iterates over a Python set, so without a fixed ``PYTHONHASHSEED`` the traced program
(and so the persistent-cache key and the last bits of the losses) change from process to process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from svi_bench.benchmarks.inference import host_lock

HASH_SEED = "0"
SMOKE_XLA_FLAGS = "--xla_backend_optimization_level=0"
DEFAULT_CACHE_DIR = Path(os.environ.get("SVI_BENCH_CACHE", Path.home() / ".cache" / "svi-bench"))


def ensure_hash_seed(argv: list[str], module: str = "svi_bench.benchmarks") -> None:
    """Re-execute this process with ``PYTHONHASHSEED`` fixed unless it already is."""
    if os.environ.get("PYTHONHASHSEED") == HASH_SEED:
        return
    env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def backend_started() -> bool:
    """Whether JAX has created its backends: from then on ``XLA_FLAGS`` changes nothing in this
    process (and set now, would only reach its child processes)."""
    from jax._src import xla_bridge

    return xla_bridge.backends_are_initialized()


def configure_jax(cache_dir: Path | None = None) -> Path:
    """CPU platform unless the user chose one, 64-bit off, persistent compilation cache on."""
    global _cache_root
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    if cache_dir is not None:
        _cache_root = Path(cache_dir)
    cache = Path(cache_dir or DEFAULT_CACHE_DIR) / "jax"
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _register_cache_listener()
    return cache


_cache_root: Path | None = None


def cache_root() -> Path:
    """The suite's cache folder: ``configure_jax``'s ``cache_dir`` if it was given one, else
    ``DEFAULT_CACHE_DIR`` (read when called, so tests can point it elsewhere)."""
    return _cache_root or Path(DEFAULT_CACHE_DIR)


_listener_registered = False
_events = {"requests": 0, "hits": 0}
_EVENT_NAMES = {"/jax/compilation_cache/compile_requests_use_cache": "requests",
                "/jax/compilation_cache/cache_hits": "hits"}


def _register_cache_listener() -> None:
    global _listener_registered
    if _listener_registered:
        return
    from jax import monitoring

    def listener(event: str, **_: object) -> None:
        name = _EVENT_NAMES.get(event)
        if name:
            _events[name] += 1

    monitoring.register_event_listener(listener)
    _listener_registered = True


def cache_hits() -> int:
    """How many compiles this process has served from the persistent cache so far."""
    return _events["hits"]


JAX_CACHE = "jax"
"""``cache`` value of a program whose own XLA compile JAX's persistent cache served."""


def lower(program, *args) -> Any:
    """``program.lower(*args)``: tracing runs the model's Python code, so never beside this
    process's background task (``host_lock.foreground``: NumPyro's handler stack is global)."""
    with host_lock.foreground():
        return program.lower(*args)


def compile_timed(program, *args) -> tuple[Any, float, str]:
    """Compile ``program`` (a jitted function) ahead of time for ``args``.

    Returns ``(compiled, compile_s, cache)``: the compiled function, the time to trace, lower
    and compile it, and ``"jax"`` if JAX's persistent cache served the compile of this program
    itself, else ``""``. Only the ``compile()`` call is watched: eager operations while tracing
    compile (and may hit the cache for) small sub-computations, which say nothing about the
    program. Its compile is one cache request; it counts as a hit only if every request in the
    call hit.
    """
    start = time.perf_counter()
    lowered = lower(program, *args)
    before = dict(_events)
    compiled = lowered.compile()
    requests = _events["requests"] - before["requests"]
    hits = _events["hits"] - before["hits"]
    compile_s = time.perf_counter() - start
    return compiled, compile_s, JAX_CACHE if requests and hits == requests else ""


def compile_fresh(lowered: Any) -> Any:
    """Compile ``lowered`` by XLA itself, bypassing JAX's persistent cache for this one program.

    For programs whose executable the suite stores (``executables``): XLA's CPU client cannot
    serialise again an executable that JAX loaded from its cache (the copy loses the compiled
    functions and fails at run time with "Function ... not found"), so a stored executable must
    be a freshly compiled one. The cache is switched off and back on around the call.
    """
    import jax
    from jax.experimental.compilation_cache.compilation_cache import reset_cache

    enabled = jax.config.jax_enable_compilation_cache
    jax.config.update("jax_enable_compilation_cache", False)
    reset_cache()  # JAX decides once per process whether to use the cache: decide again
    try:
        return lowered.compile()
    finally:
        jax.config.update("jax_enable_compilation_cache", enabled)
        reset_cache()
