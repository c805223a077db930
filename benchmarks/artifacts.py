"""Files on disk: atomic writes with the umask's mode, for every file the suite writes.

Run artifacts and references are ArviZ netCDF (``benchmarks.scoring.arviz_adapter``), never pickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write) -> None:
    """Write through ``write(tmp_path)`` then rename over ``path``: a kill leaves the old file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are as shareable as usual
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def folder_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold the OS lock (``fcntl.flock``) of ``folder/.NAME.lock`` around a read-merge-write of
    one shared file: runs sharing a results folder take turns instead of each writing back the
    file as it read it, dropping the other's entries. One lock per shared file, never nested."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f".{name}.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def cached_json(path: Path, compute, to_json, from_json):
    """A value recorded as one JSON file in a cache: ``from_json(doc)`` of the file when it parses
    (any exception there is a miss), else ``compute()``, recorded as ``to_json(value)`` when the
    folder can be written (a cache, never results: failing to write costs only the next
    recomputation). Exceptions of ``compute`` propagate and nothing is recorded."""
    import json

    path = Path(path)
    try:
        return from_json(json.loads(path.read_text()))
    except Exception:  # noqa: BLE001 - missing, unreadable, corrupt or foreign: recompute
        pass
    value = compute()
    text = json.dumps(to_json(value))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda tmp: Path(tmp).write_text(text + "\n"))
    except OSError:
        pass
    return value
