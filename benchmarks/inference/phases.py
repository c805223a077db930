"""Which phase this process's work is in, for a progress line to show: getting a program's
executable (trace, lower, compile or load) or its timed run.

The command that shows progress sets a listener (``listening``); without one ``announce`` does
nothing, so a Dask worker or a library caller pays one attribute read. A leaf module: it imports
nothing of the suite.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

COMPILING = "compiling"
RUNNING = "running"

_listener: Callable[[str], None] | None = None


def announce(phase: str) -> None:
    """Tell the listener, if any, that this process's work entered ``phase``."""
    if _listener is not None:
        _listener(phase)


@contextlib.contextmanager
def listening(callback: Callable[[str], None]) -> Iterator[None]:
    """``callback(phase)`` is called at every ``announce`` within the body."""
    global _listener
    saved, _listener = _listener, callback
    try:
        yield
    finally:
        _listener = saved
