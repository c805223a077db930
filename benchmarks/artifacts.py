"""Arrays on disk: atomic writes and the npz layout of posterior draws (runs and references alike).

Draws are stored as ``draw:<site>`` next to named arrays (loss trace, energies), never pickled.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np


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


def save_artifact(path: Path, draws: Mapping[str, np.ndarray], **arrays: np.ndarray) -> None:
    """Posterior draws as ``draw:<site>`` plus named arrays (loss trace, energies) in one npz."""
    payload = {f"draw:{site}": np.asarray(v) for site, v in draws.items()}
    payload.update({k: np.asarray(v) for k, v in arrays.items()})

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **payload)

    atomic_write(Path(path), write)


def load_artifact(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(draws by site, other arrays) from a run artifact, never unpickling."""
    with np.load(path, allow_pickle=False) as npz:
        draws = {k[len("draw:") :]: npz[k] for k in npz.files if k.startswith("draw:")}
        other = {k: npz[k] for k in npz.files if not k.startswith("draw:")}
    return draws, other
