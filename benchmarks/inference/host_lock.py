"""One timed run at a time per host: compiles of parallel workers overlap, their timed runs do not.

With several worker processes on one machine (``--jobs N``, a Dask cluster), a run timed while
another worker's program runs measures the contention, not the method. ``timed_section`` holds an
exclusive ``fcntl.flock`` on ``$SVI_BENCH_CACHE/locks/<hostname>.lock`` around the timed call
only; compiles, data, scoring and artifact writes stay concurrent. The lock is keyed by host name
because the cache folder may be on a file system shared by many hosts (NFS emulates ``flock``
with cluster-wide POSIX locks): one lock per machine, not one for the cluster.

It is active only where ``SVI_BENCH_TIMING_LOCK=1`` (set for Dask workers), so the serial path pays
nothing. The time spent waiting for the lock is counted (``stats``), never part of ``run_s``.
A leaf module of the standard library only: ``jax_setup`` imports it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ENV = "SVI_BENCH_TIMING_LOCK"


class LockStats(NamedTuple):
    """What this process's timed sections did so far: how many held the lock, seconds waited."""

    sections: int
    wait_s: float


_sections = 0
_wait_s = 0.0


def active() -> bool:
    """Whether timed sections take the host lock in this process (``SVI_BENCH_TIMING_LOCK=1``)."""
    return os.environ.get(ENV) == "1"


def lock_path(cache_dir: Path | None = None) -> Path:
    """This host's lock file: one per machine, even when the cache folder is shared."""
    root = Path(cache_dir or os.environ.get("SVI_BENCH_CACHE", Path.home() / ".cache" / "svi-bench"))
    return root / "locks" / f"{socket.gethostname()}.lock"


def stats() -> LockStats:
    """Cumulative counts of this process; a caller takes the difference around its work."""
    return LockStats(_sections, _wait_s)


@contextlib.contextmanager
def timed_section(cache_dir: Path | None = None) -> Iterator[None]:
    """Hold this host's timing lock for the body when ``active()``; otherwise do nothing."""
    global _sections, _wait_s
    if not active():
        yield
        return
    import fcntl

    path = lock_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:  # a fresh open file description: excludes threads too
        start = time.perf_counter()
        fcntl.flock(handle, fcntl.LOCK_EX)
        _wait_s += time.perf_counter() - start
        _sections += 1
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["ENV", "LockStats", "active", "lock_path", "stats", "timed_section"]
