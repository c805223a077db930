"""The results table on disk: atomic writes after every run, resume, corrupt-file checks; where each
run's artifact lives. Runs sharing a folder merge their rows under the folder's lock."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from svi_bench.benchmarks.artifacts import atomic_write, folder_lock
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
    if path.is_dir():
        raise ResultsError(f"results file {path} is a directory, not a parquet file; "
                           "valid: a results.parquet file (move it away or use another folder)")
    if not path.exists():
        _refuse_orphan_csv(path.with_name("results.csv"))
        return _frame([])
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise ResultsError(
            f"results file {path} is corrupt ({type(exc).__name__}); "
            "move it away or choose another --out"
        ) from None
    missing = [c for c in KEY + ("status",) if c not in df.columns]
    if missing:
        raise ResultsError(f"results file {path} lacks columns {missing}; not a results table")
    if not pd.api.types.is_integer_dtype(df["seed"]) or df["seed"].isna().any():
        raise ResultsError(f"results file {path}: its seed column holds {df['seed'].dtype} "
                           "values or gaps; valid: integer seeds (move it away or choose "
                           "another --out)")
    bad = sorted(set(df["status"].dropna()) - set(STATUSES))
    if bad:
        raise ResultsError(f"results file {path} has unknown status {bad[0]!r}; valid: {STATUSES}")
    return df


def _refuse_orphan_csv(csv: Path) -> None:
    """A ``results.csv`` holding rows without its ``results.parquet`` (moved or deleted): the
    next save would replace those rows by this run's alone, so the folder is refused."""
    if not csv.is_file():
        return
    try:
        count = f"{len(pd.read_csv(csv))} rows"
    except pd.errors.EmptyDataError:
        return
    except Exception:  # noqa: BLE001 - unreadable: it may hold rows all the same
        count = "data"
    if count == "0 rows":
        return
    raise ResultsError(f"{csv} holds {count} but results.parquet beside it is missing, and a run "
                       "would overwrite them; valid: restore results.parquet, or move "
                       "results.csv away (or choose another --out)")


def identity(row: Mapping[str, Any]) -> tuple:
    """A run's identity (``schema.KEY``): model, method, seed, settings hash and data key."""
    return tuple(int(row[k]) if k == "seed" else row[k] for k in KEY)


def check_writable(out_dir: Path, sub: str = "runs") -> None:
    """Create ``out_dir/sub`` and prove both writable, before anything is computed."""
    out_dir = Path(out_dir)
    for parent in (out_dir, *out_dir.parents):
        if parent.exists() and not parent.is_dir():
            raise ResultsError(f"--out {out_dir}: {parent} is a file, not a folder; "
                               "valid: a folder that exists or can be created")
    try:
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
        for folder in (out_dir, out_dir / sub):
            probe = folder / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ResultsError(f"--out {out_dir} is not writable ({reason}); "
                           "valid: a folder you can write to") from None


#: The lock (``artifacts.folder_lock``) of the results table's read-merge-write.
LOCK = "results.parquet"


def _by_identity(df: pd.DataFrame) -> dict[tuple, dict[str, Any]]:
    return {identity(r): r for r in df.to_dict("records")}


class ResultsStore:
    """Rows keyed by run identity (``identity``): a row replaces only the row of its own identity,
    and never an ok row by a failed one (that failure is kept in ``kept_back`` for the summary).
    Every ``add`` re-reads the table under the folder's lock and merges into it, so runs sharing
    the folder keep each other's rows."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = Path(out_dir)
        existing = load_results(self.out_dir)
        check_writable(self.out_dir)
        self._rows: dict[tuple, dict[str, Any]] = _by_identity(existing)
        self.kept_back: list[dict[str, Any]] = []

    def _stored_ok(self, key: tuple) -> bool:
        row = self._rows.get(key)
        return row is not None and row.get("status") == "ok"

    def done(self, key: tuple) -> bool:
        """True when the run of identity ``key`` is stored ok and its artifact, if it has one,
        can be read (a null status, or a truncated, garbage or missing artifact, is not done)."""
        if not self._stored_ok(key):
            return False
        artifact = self._rows[key].get("artifact")
        if not isinstance(artifact, str) or not artifact:
            return True  # a study's own program: rows without draws
        from svi_bench.benchmarks.scoring.arviz_adapter import run_status

        return run_status(self.out_dir / artifact) == "ok"

    def add(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Merge ``rows`` into the table on disk as it is now (other runs may have added rows)."""
        with folder_lock(self.out_dir, LOCK):
            self._rows.update(_by_identity(load_results(self.out_dir)))
            for row in rows:
                key = identity(row)
                if self._stored_ok(key) and row.get("status") != "ok":
                    self.kept_back.append(dict(row))
                    continue
                self._rows[key] = dict(row)
            self.save()

    def frame(self) -> pd.DataFrame:
        extra = sorted({k for r in self._rows.values() for k in r} - set(COLUMN_NAMES))
        return _frame(self._rows.values(), extra)

    def save(self) -> None:
        """Write the table (parquet, and CSV beside it); call under the folder's lock."""
        df = self.frame()
        atomic_write(self.out_dir / "results.parquet", lambda p: df.to_parquet(p, index=False))
        atomic_write(self.out_dir / "results.csv", lambda p: df.to_csv(p, index=False))


def artifact_path(out_dir: Path, model: str, method: str, seed: int, settings_hash: str) -> Path:
    """``runs/<model>__<method>__seed<k>__<settings hash>.nc``: variants never overwrite each other."""
    safe_method = method.replace(":", "-")
    return Path(out_dir) / "runs" / f"{model}__{safe_method}__seed{seed}__{settings_hash}.nc"


__all__ = ["ResultsError", "ResultsStore", "artifact_path", "check_writable", "identity",
           "load_results"]
