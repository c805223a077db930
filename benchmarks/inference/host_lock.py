"""A timed run alone on its host: other workers' compiles overlap each other, never a timed run.

With several worker processes on one machine (``--jobs N``, a Dask cluster), a run timed while
another worker compiles or scores measures the contention, not the method. A worker holds a
shared ``fcntl.flock`` on ``$SVI_BENCH_CACHE/locks/<hostname>.lock`` for the whole of a task
(``working``): compiles, data, scoring and artifact writes of all workers overlap freely.
``timed_section`` converts it to an exclusive lock around the timed call only, so the call starts
once every other worker on the host has paused (finished its current step or is waiting for the
lock itself) and none resumes until it ends. Conversion releases the shared lock first, so two
workers asking at once cannot deadlock. The lock is keyed by host name
because the cache folder may be on a file system shared by many hosts (NFS emulates ``flock``
with cluster-wide POSIX locks): one lock per machine, not one for the cluster.

It is active only where ``SVI_BENCH_TIMING_LOCK=1`` (set for Dask workers), so the serial path pays
nothing. The time spent waiting for the lock is counted (``stats``), never part of ``run_s``.

Within one process, ``background`` and ``foreground`` keep a thread that completes the previous
cell's rows (the serial grid: diagnostics, artifacts, scores) off every timed run and off all
model code: NumPyro's handler stack is one global list, so two threads running models at once
would corrupt each other's traces. The background thread holds the in-process lock for its
whole task; a timed section, tracing a program and making a model's data take it first. Only
loading a stored executable or XLA's compile of an already lowered program overlap it.
A leaf module of the standard library only: ``jax_setup`` imports it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
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
_working: object | None = None  # the open lock file while ``working`` holds the shared lock
_in_process = threading.RLock()  # held by this process's background task (``background``)


@contextlib.contextmanager
def foreground() -> Iterator[None]:
    """The body runs with no background task of this process running beside it."""
    with _in_process:
        yield


background = foreground
"""A background task holds the same in-process lock for its whole body, so ``foreground``
sections of other threads wait until it ends (re-entrant: the task's own timed sections pass)."""


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
def working(cache_dir: Path | None = None, *, always: bool = False) -> Iterator[None]:
    """Hold this host's lock shared for the body (one task's work) when ``active()``, or
    ``always`` (the grid's client writing results between its workers' timed runs)."""
    global _working
    if not (active() or always) or _working is not None:
        yield
        return
    import fcntl

    path = lock_path(cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        _working = handle
        try:
            yield
        finally:
            _working = None
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def timed_section(cache_dir: Path | None = None) -> Iterator[None]:
    """Hold this host's lock exclusively for the body when ``active()`` (converting this task's
    shared lock, if ``working`` holds one, and back afterwards), and always with no background
    task of this process beside it (``foreground``)."""
    global _sections, _wait_s
    with foreground():  # never beside this process's own background task
        if not active():
            yield
            return
        import fcntl

        with contextlib.ExitStack() as stack:
            handle = _working
            if handle is None:  # a fresh open file description: excludes threads too
                path = lock_path(cache_dir)
                path.parent.mkdir(parents=True, exist_ok=True)
                handle = stack.enter_context(open(path, "a"))
            start = time.perf_counter()
            fcntl.flock(handle, fcntl.LOCK_EX)
            _wait_s += time.perf_counter() - start
            _sections += 1
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_SH if handle is _working else fcntl.LOCK_UN)


__all__ = ["ENV", "LockStats", "active", "background", "foreground", "lock_path", "stats",
           "timed_section", "working"]
