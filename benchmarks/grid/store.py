"""The results table on disk: atomic writes after every run, resume, corrupt-file checks; where each
run's artifact lives."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from svi_bench.benchmarks.artifacts import atomic_write, load_artifact, save_artifact
from svi_bench.benchmarks.grid.schema import COLUMN_NAMES, COLUMNS, KEY, STATUSES


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
        atomic_write(self.out_dir / "results.parquet", lambda p: df.to_parquet(p, index=False))
        atomic_write(self.out_dir / "results.csv", lambda p: df.to_csv(p, index=False))


def artifact_path(out_dir: Path, model: str, method: str, seed: int) -> Path:
    safe_method = method.replace(":", "-")
    return Path(out_dir) / "runs" / f"{model}__{safe_method}__seed{seed}.npz"


__all__ = ["ResultsError", "ResultsStore", "artifact_path", "load_artifact", "load_results",
           "save_artifact"]
