"""Results and per-run artifacts on disk: atomic writes after every run, resume, corrupt-file checks."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.grid.schema import COLUMN_NAMES, COLUMNS, KEY, STATUSES


class ResultsError(Exception):
    """A results file that cannot be trusted; the message is one line for the user."""


def _frame(rows: Iterable[Mapping[str, Any]], extra_columns: Iterable[str] = ()) -> pd.DataFrame:
    rows = list(rows)
    names = list(COLUMN_NAMES) + [c for c in extra_columns if c not in COLUMN_NAMES]
    df = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame(columns=names)
    for col in COLUMNS:
        df[col.name] = df[col.name].astype(col.dtype)
    for name in names[len(COLUMN_NAMES) :]:
        if df[name].dtype == object:
            try:
                df[name] = df[name].astype("float64")
            except (TypeError, ValueError):
                df[name] = df[name].astype("string")
    return df


def load_results(out_dir: Path) -> pd.DataFrame:
    """The results table in ``out_dir`` (empty if none); a corrupt or foreign file raises."""
    path = Path(out_dir) / "results.parquet"
    if not path.exists():
        return _frame([])
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ResultsError(
            f"results file {path} is corrupt ({type(exc).__name__}); "
            "move it away or choose another --out"
        ) from None
    missing = [c for c in KEY + ("status", "settings_hash") if c not in df.columns]
    if missing:
        raise ResultsError(f"results file {path} lacks columns {missing}; not a results table")
    bad = sorted(set(df["status"].dropna()) - set(STATUSES))
    if bad:
        raise ResultsError(f"results file {path} has unknown status {bad[0]!r}; valid: {STATUSES}")
    return df


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class ResultsStore:
    """Rows keyed by (model, method, seed, profile); a new row replaces the old one with its key."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "runs").mkdir(exist_ok=True)
        existing = load_results(self.out_dir)
        self._rows: dict[tuple, dict[str, Any]] = {
            tuple(r[k] for k in KEY): r for r in existing.to_dict("records")
        }

    def done(self, key: tuple, settings_hash: str) -> bool:
        row = self._rows.get(key)
        return row is not None and row.get("settings_hash") == settings_hash

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self._rows[tuple(row[k] for k in KEY)] = dict(row)
        self.save()

    def frame(self) -> pd.DataFrame:
        extra = sorted({k for r in self._rows.values() for k in r} - set(COLUMN_NAMES))
        return _frame(self._rows.values(), extra)

    def save(self) -> None:
        df = self.frame()
        _atomic_write(self.out_dir / "results.parquet", lambda p: df.to_parquet(p, index=False))
        _atomic_write(self.out_dir / "results.csv", lambda p: df.to_csv(p, index=False))


def artifact_path(out_dir: Path, model: str, method: str, seed: int) -> Path:
    safe_method = method.replace(":", "-")
    return Path(out_dir) / "runs" / f"{model}__{safe_method}__seed{seed}.npz"


def save_artifact(path: Path, draws: Mapping[str, np.ndarray], **arrays: np.ndarray) -> None:
    """Posterior draws as ``draw:<site>`` plus named arrays (loss trace, energies) in one npz."""
    payload = {f"draw:{site}": np.asarray(v) for site, v in draws.items()}
    payload.update({k: np.asarray(v) for k, v in arrays.items()})

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **payload)

    _atomic_write(Path(path), write)


def load_artifact(path: Path) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(draws by site, other arrays) from a run artifact, never unpickling."""
    with np.load(path, allow_pickle=False) as npz:
        draws = {k[len("draw:") :]: npz[k] for k in npz.files if k.startswith("draw:")}
        other = {k: npz[k] for k in npz.files if not k.startswith("draw:")}
    return draws, other
