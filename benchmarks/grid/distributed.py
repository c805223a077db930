"""The grid on Dask distributed: one task per cell, compiles concurrent, timed runs alone.

``--jobs N`` starts a ``LocalCluster`` of N single-threaded worker processes; ``--scheduler
ADDRESS`` uses a running cluster. Workers write artifacts and references into the results folder
and share the caches, so every worker must see the same file system as the client. Only the client
writes the results table, after every completed cell (``record``).

* Each model's cells run one at a time until one of them ends with an ok row, which fetched (from
  the results folder, the shipped references or the cache) or built the model's reference through
  the runner's own path; then the model's other cells are submitted at once and find it stored. So
  a reference is built once, before the rest of its model, and models overlap freely.
* A cell's timed run holds the per-host lock (``benchmarks.inference.host_lock``): compiles
  overlap, timed runs do not; rows say so (``timing_lock``, ``lock_wait_s``).
* A worker that dies (``KilledWorker``) gets its cell resubmitted once; a second death is a failed
  row ``worker died twice: ...``. Our LocalCluster's scheduler allows no retry of its own
  (``allowed-failures`` 0) and sends one task per worker thread at a time, so a death marks only
  the cell that was running.

This module is also a Dask nanny preload (``--preload-nanny svi_bench.benchmarks.grid.distributed``
for ``dask worker``): Dask gives workers ``PYTHONHASHSEED=6640`` unless a preload changes it, and
the suite needs 0 (NumPyro's ELBO iterates a Python set: another seed traces another program).
Nothing heavy is imported at module level, so the nanny stays light.
"""

from __future__ import annotations

import contextlib
import math
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from svi_bench.benchmarks import interrupts
from svi_bench.benchmarks.inference import host_lock

HASH_SEED = "0"  # as jax_setup.HASH_SEED; not imported from there to keep the preload light
PRELOAD = __name__
Record = Callable[[Any, list[dict], int], None]
TIMEOUT_ENV = "SVI_BENCH_SCHEDULER_TIMEOUT"
"""Seconds to wait for the scheduler at ``--scheduler`` to answer (default 30)."""
DEFAULT_TIMEOUT_S = 30.0
HOST_PORT_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
VALID_ADDRESSES = ("tcp://HOST:PORT (e.g. tcp://127.0.0.1:8786), tls://HOST:PORT, ws://HOST:PORT, "
                   "wss://HOST:PORT, ucx://HOST:PORT or inproc://ADDRESS")


class ClusterError(RuntimeError):
    """A cluster the grid cannot use as it stands; the message is one line for the user."""


def check_address(address: str) -> None:
    """Refuse anything but a Dask scheduler address (``scheme://host:port``) before any work."""
    from distributed.comm import parse_address, parse_host_port

    problem = f"--scheduler {address!r} is not a Dask scheduler address; valid: {VALID_ADDRESSES}"
    try:
        scheme, location = parse_address(address, strict=True)
    except ValueError:
        raise ClusterError(problem) from None
    if scheme not in (*HOST_PORT_SCHEMES, "inproc") or not location:
        raise ClusterError(problem)
    if scheme in HOST_PORT_SCHEMES:
        try:
            host, port = parse_host_port(location)
        except ValueError:
            raise ClusterError(problem) from None
        if not host or not 0 < int(port) < 65536:
            raise ClusterError(problem)


def connect_timeout() -> float:
    """The seconds ``--scheduler`` waits for an answer (``SVI_BENCH_SCHEDULER_TIMEOUT``)."""
    text = os.environ.get(TIMEOUT_ENV, "")
    try:
        value = float(text) if text else DEFAULT_TIMEOUT_S
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ClusterError(f"{TIMEOUT_ENV}={text!r}; valid: a number of seconds > 0")
    return value


async def _identity(address: str, timeout: float) -> Any:
    from distributed.comm import connect

    comm = await connect(address, timeout=timeout)
    try:
        await comm.write({"op": "identity", "reply": True})
        return await comm.read()
    finally:
        comm.abort()


def probe_scheduler(address: str, timeout: float) -> None:
    """Ask the process at ``address`` who it is, within ``timeout`` seconds: a listener that is
    no Dask scheduler (an HTTP server, one that never answers) is refused in one line, where
    ``Client`` would raise from deep inside or wait for ever."""
    import asyncio

    where = f"--scheduler {address}"
    try:
        answer = asyncio.run(asyncio.wait_for(_identity(address, timeout), timeout))
    except TimeoutError:
        raise ClusterError(f"{where}: no Dask scheduler answered within {timeout:g} s "
                           f"(set {TIMEOUT_ENV} to wait longer)") from None
    except OSError as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ClusterError(f"{where}: cannot connect within {timeout:g} s ({first})") from None
    except Exception as exc:  # garbage on the wire: MemoryError for a huge "frame", a bad header
        raise ClusterError(f"{where}: the listener there is no Dask scheduler (its answer is not "
                           f"Dask's protocol: {type(exc).__name__})") from None
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        kind = answer.get("type") if isinstance(answer, dict) else type(answer).__name__
        raise ClusterError(f"{where}: the process there is no Dask scheduler (it says {kind!r}); "
                           "give the scheduler's address")


def dask_setup(server: Any) -> None:
    """Preload hook. Of a nanny: workers start with ``PYTHONHASHSEED=0`` and the host timing lock
    on. Of a worker (our LocalCluster's): it ignores Ctrl-C, which a terminal sends to every
    process of the run; the client stops the cluster and says one line."""
    if not hasattr(server, "pre_spawn_env"):
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
        return
    for env in (server.pre_spawn_env, server.env):
        env["PYTHONHASHSEED"] = HASH_SEED
    server.env[host_lock.ENV] = "1"


def _worker_facts() -> dict[str, Any]:
    return {"hash_seed": os.environ.get("PYTHONHASHSEED"), "hash": hash("svi-bench")}


def _prepare(xla_flags: str, timing_lock: bool = True) -> None:
    """Per task, idempotent: the lock on (unless the client set ``SVI_BENCH_TIMING_LOCK=0``), the
    client's XLA flags where unset, JAX configured."""
    os.environ[host_lock.ENV] = "1" if timing_lock else "0"
    if xla_flags and "XLA_FLAGS" not in os.environ:
        os.environ["XLA_FLAGS"] = xla_flags
    from svi_bench.benchmarks.inference import jax_setup

    jax_setup.configure_jax()


def _cell_task(cell: Any, out_dir: Any, score: bool, xla_flags: str,
               timing_lock: bool = True) -> list[dict]:
    """One cell on a worker: its rows, with whether its timed run held the host lock."""
    _prepare(xla_flags, timing_lock)
    from svi_bench.benchmarks.grid.model_cells import run_model_cells

    before = host_lock.stats()
    with host_lock.working():  # shared: paused only while another worker's run is timed
        ((_, rows),) = list(run_model_cells([cell], out_dir, score))
    after = host_lock.stats()
    for row in rows:
        row.update(timing_lock=after.sections > before.sections,
                   lock_wait_s=after.wait_s - before.wait_s)
    return rows


@contextlib.contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A LocalCluster of ``workers`` single-threaded processes set up for the grid: hash seed 0
    and the timing lock (the preload), no scheduler retries of its own, one task per worker."""
    import dask
    from distributed import LocalCluster

    saved = dict(os.environ)  # nannies run in this process and export their env into it
    config = {"distributed.scheduler.allowed-failures": 0,
              "distributed.scheduler.worker-saturation": 1.0,
              "distributed.nanny.pre-spawn-environ": {}}
    try:
        with dask.config.set(config), contextlib.ExitStack() as stack:
            with interrupts.deferred():  # no half-built cluster on Ctrl-C
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    preload_nanny=[PRELOAD], preload=[PRELOAD], dashboard_address=None,
                    silence_logs=40))
            try:
                yield cluster
            except KeyboardInterrupt:
                _stop_workers(cluster)
                raise
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _stop_workers(cluster: Any) -> None:
    """Ctrl-C: end our workers at once. Their cells' rows are not saved anyway, and a worker
    closed in the middle of a cell logs the scheduler's and the client's going one traceback at a
    time; the rows already saved are intact (every write is atomic)."""
    import signal

    for nanny in list(cluster.workers.values()):
        pid = getattr(nanny, "pid", None)
        if pid:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _client(jobs: int, scheduler: str | None) -> Iterator[tuple[Any, int]]:
    """A client with its worker count: of a new LocalCluster, or of the cluster at ``scheduler``."""
    from distributed import Client

    if not scheduler:
        with local_cluster(jobs) as cluster, contextlib.ExitStack() as stack:
            with interrupts.deferred():  # no half-built client on Ctrl-C
                client = stack.enter_context(Client(cluster))
            yield client, jobs
        return
    timeout = connect_timeout()
    probe_scheduler(scheduler, timeout)
    try:
        with interrupts.deferred():
            client = Client(scheduler, timeout=f"{timeout}s")
    except Exception as exc:  # it answered the probe, then went away
        raise ClusterError(f"--scheduler {scheduler}: cannot connect "
                           f"({type(exc).__name__}: {exc})"[:300]) from None
    with client:
        try:
            client.wait_for_workers(1, timeout=300)
        except TimeoutError:
            raise ClusterError(f"--scheduler {scheduler}: no worker joined in 300 s") from None
        yield client, len(client.scheduler_info(n_workers=-1)["workers"])


def _check_workers(client: Any) -> None:
    """Refuse workers whose hash seed differs from the suite's: their programs would differ."""
    bad = sorted(addr for addr, facts in client.run(_worker_facts).items()
                 if facts["hash_seed"] != HASH_SEED
                 or (os.environ.get("PYTHONHASHSEED") == HASH_SEED and facts["hash"] != hash("svi-bench")))
    if bad:
        raise ClusterError(
            f"worker {bad[0]} runs with PYTHONHASHSEED != {HASH_SEED}; start workers with "
            f"--preload-nanny {PRELOAD} (or PYTHONHASHSEED=0 and --no-nanny)")


def _death(exc: BaseException) -> bool:
    from distributed import KilledWorker
    from distributed.comm import CommClosedError

    return isinstance(exc, KilledWorker | CommClosedError)


def run_cells(groups: Sequence[Sequence[Any]], out_dir: Any, score: bool,
              record: Record, jobs: int = 2, scheduler: str | None = None) -> None:
    """Run every model's cells (``groups``, one list per model) on Dask; ``record(cell, rows,
    workers)`` is called in this process as each cell completes."""
    from distributed import as_completed

    from svi_bench.benchmarks.grid.run_spec import failed_rows, one_line

    xla_flags = os.environ.get("XLA_FLAGS", "")
    # SVI_BENCH_TIMING_LOCK=0: throughput over honest timings (rows then say timing_lock False)
    timing_lock = os.environ.get(host_lock.ENV) != "0"
    with _client(jobs, scheduler) as (client, workers):
        _check_workers(client)
        pending = as_completed()
        meta: dict[Any, tuple[Any, int]] = {}

        def submit(cell: Any, attempt: int) -> None:
            key = f"cell-{cell.spec.name}-{cell.method}-{attempt}-{uuid.uuid4().hex[:8]}"
            future = client.submit(_cell_task, cell, out_dir, score, xla_flags, timing_lock,
                                   key=key, pure=False)
            meta[future] = (cell, attempt)
            pending.add(future)

        queues = [list(group) for group in groups]
        by_model = {q[0].spec.name: q for q in queues if q}
        for queue in by_model.values():
            for cell in (queue[:1] if score else queue):
                submit(cell, 1)
            del queue[:1 if score else len(queue)]

        for future in pending:
            cell, attempt = meta.pop(future)
            try:
                rows = future.result()
            except Exception as exc:  # a dead worker or a task that could not run
                if _death(exc) and attempt == 1:
                    submit(cell, 2)
                    continue
                why = "worker died twice" if _death(exc) else "task failed"
                rows = failed_rows(cell, f"{why}: {one_line(exc)}")
            queue = by_model[cell.spec.name]
            if queue:  # the model's reference is stored once one of its cells ran ok
                ready = any(row["status"] == "ok" for row in rows)
                for nxt in (list(queue) if ready else queue[:1]):
                    submit(nxt, 1)
                del queue[:len(queue) if ready else 1]
            future.release()
            # The client's writes (results table, progress) pause for a worker's timed run on
            # this host like any worker's work: with 2 workers on 2 cores they had contended
            # 96 of 171 warm timed runs (host_others_share above host_load.CONTENDED_SHARE).
            with host_lock.working(always=timing_lock):
                record(cell, rows, workers)


__all__ = ["ClusterError", "PRELOAD", "TIMEOUT_ENV", "check_address", "connect_timeout",
           "dask_setup", "local_cluster", "probe_scheduler", "run_cells"]
