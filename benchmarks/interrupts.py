"""Ctrl-C: one line, exit 130, and every row saved before it kept.

The handler (``handled``) records the interrupt before raising KeyboardInterrupt, because Python
drops an exception raised inside a gc callback or ``__del__`` ("Exception ignored in
_xla_gc_callback") and the run would otherwise go on to the end; ``check`` stops it at the next
cell. Our Dask workers ignore Ctrl-C (``grid.distributed.dask_setup``), so a terminal's interrupt
stops only this process, which closes the cluster, instead of printing one traceback a worker.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

EXIT_INTERRUPTED = 130
_state: dict = {"requested": False, "out_dir": None}


def _on_interrupt(signum, frame) -> None:
    _state["requested"] = True
    logging.disable(logging.CRITICAL)  # libraries' errors while they are torn down: noise now
    raise KeyboardInterrupt


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Inside, Ctrl-C raises KeyboardInterrupt and is remembered (``requested``); the previous
    handler is back after. Only the main thread can handle signals: elsewhere nothing changes."""
    _state.update(requested=False, out_dir=None)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _on_interrupt)
    previous_hook = sys.unraisablehook

    def swallowed(unraisable) -> None:
        """Our KeyboardInterrupt dropped in a callback is remembered already; after Ctrl-C, a
        half-built object's ``__del__`` failing (a Dask client whose loop is gone) is noise."""
        if not (isinstance(unraisable.exc_value, KeyboardInterrupt) or requested()):
            previous_hook(unraisable)

    sys.unraisablehook = swallowed
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        sys.unraisablehook = previous_hook
        if requested():
            logging.disable(logging.NOTSET)


def requested() -> bool:
    return bool(_state["requested"])


def check() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came and its exception was swallowed on the way."""
    if requested():
        raise KeyboardInterrupt


def saving_to(out_dir: Path | None) -> None:
    """The results folder the one line names when a run is interrupted."""
    _state["out_dir"] = out_dir


def message() -> str:
    """The one line for the user: how many rows are saved, and where."""
    out = _state["out_dir"]
    if out is None:
        return "interrupted before any run: nothing saved"
    table = Path(out) / "results.parquet"
    try:
        import pandas as pd

        rows = len(pd.read_parquet(table)) if table.exists() else 0
    except Exception:  # an unreadable table: still say where the rows are
        return f"interrupted; the rows saved so far are in {table}"
    return f"interrupted; {rows} row{'s' * (rows != 1)} already saved in {table}"


def stop() -> int:
    """Print the one line (a further Ctrl-C now ignored) and give the exit code."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    print(message(), file=sys.stderr)
    return EXIT_INTERRUPTED


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A Ctrl-C inside is acted on when the block ends: for what must not be left half-built
    (a Dask cluster and its client, whose half-built objects fail noisily when collected)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    seen: list[int] = []

    def remember(signum, frame) -> None:
        _state["requested"] = True
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if seen:
        _on_interrupt(signal.SIGINT, None)


__all__ = ["EXIT_INTERRUPTED", "check", "deferred", "handled", "message",
           "requested", "saving_to", "stop"]
