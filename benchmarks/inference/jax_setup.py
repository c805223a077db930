"""Process set-up for reproducible, cached compiles: CPU by default, a fixed hash seed, JAX's cache.

NumPyro's ELBO iterates over a Python set, so without a fixed ``PYTHONHASHSEED`` the traced program
(and so the persistent-cache key and the last bits of the losses) change from process to process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HASH_SEED = "0"
SMOKE_XLA_FLAGS = "--xla_backend_optimization_level=0"
DEFAULT_CACHE_DIR = Path(os.environ.get("SVI_BENCH_CACHE", Path.home() / ".cache" / "svi-bench"))



def ensure_hash_seed(argv: list[str], module: str = "svi_bench.benchmarks") -> None:
    """Re-execute this process with ``PYTHONHASHSEED`` fixed unless it already is."""
    if os.environ.get("PYTHONHASHSEED") == HASH_SEED:
        return
    env = {**os.environ, "PYTHONHASHSEED": HASH_SEED}
    os.execve(sys.executable, [sys.executable, "-m", module, *argv], env)


def configure_jax(cache_dir: Path | None = None) -> Path:
    """CPU platform unless the user chose one, 64-bit off, persistent compilation cache on."""
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax

    cache = Path(cache_dir or DEFAULT_CACHE_DIR) / "jax"
    cache.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(cache))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _register_cache_listener()
    return cache


_listener_registered = False
_cache_hit_count = 0


def _register_cache_listener() -> None:
    global _listener_registered
    if _listener_registered:
        return
    from jax import monitoring

    def listener(event: str, **_: object) -> None:
        global _cache_hit_count
        if event == "/jax/compilation_cache/cache_hits":
            _cache_hit_count += 1

    monitoring.register_event_listener(listener)
    _listener_registered = True


def cache_hits() -> int:
    """How many compiles this process has served from the persistent cache so far."""
    return _cache_hit_count


def compile_timed(program, *args):
    """Compile ``program`` (a jitted function) ahead of time for ``args``.

    Returns ``(compiled, compile_s, cache_hit)``: the compiled function, the time to trace, lower
    and compile it, and whether the compile was served from the persistent cache.
    """
    hits_before = cache_hits()
    start = time.perf_counter()
    compiled = program.lower(*args).compile()
    compile_s = time.perf_counter() - start
    return compiled, compile_s, cache_hits() > hits_before


def compile_and_run(program, *args):
    """Compile ``program`` (a jitted function) ahead of time, then run it once.

    Returns ``(host outputs, compile_s, run_s, cache_hit)``: compile time (``compile_timed``)
    apart from run time (the compiled call up to ``block_until_ready``), and whether the compile
    was served from the persistent cache.
    """
    import jax

    compiled, compile_s, cache_hit = compile_timed(program, *args)
    start = time.perf_counter()
    out = jax.block_until_ready(compiled(*args))
    run_s = time.perf_counter() - start
    return jax.device_get(out), compile_s, run_s, cache_hit
