"""Read a results folder for the report: the table, the run artifacts and the references.

Everything here tolerates missing or damaged parts: a missing artifact or reference is returned
as None with the reason, so that the page can say so instead of failing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.grid.profiles import reference_quality
from svi_bench.benchmarks.inference.host_load import CONTENDED_SHARE
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring.rejudge import current_verdicts

PROFILE_ORDER = ("paper", "quick", "smoke")


class ReportError(Exception):
    """Input the report cannot be built from; the message is one line for the user."""


def slug(name: str) -> str:
    """A file-name-safe version of a model or method name (``manual:beta`` -> ``manual-beta``)."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", str(name)) or "_"


@dataclass
class Results:
    """The rows of one profile of a results folder, plus what the folder holds besides."""

    results_dir: Path
    df: pd.DataFrame
    profile: str | None
    other_profiles: list[str] = field(default_factory=list)
    references: list[StoredReference] = field(default_factory=list)
    reference_notes: list[str] = field(default_factory=list)
    verdict_note: str = ""  # rows re-judged under the current verdict policy (scoring.rejudge)
    timing_note: str = ""  # how many timed runs were contended (contention_note)


@dataclass
class StoredReference:
    json_path: Path
    draws_path: Path
    provenance: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.provenance.get("model", ""))


def load(results_dir: Path, profile: str | None = None) -> Results:
    """The results of ``results_dir`` (one profile), or ReportError with a one-line reason."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise ReportError(f"results folder {results_dir} does not exist; "
                          "run `svi-bench run --out DIR` first")
    if not (results_dir / "results.parquet").exists():  # a directory: load_results says so
        raise ReportError(f"no results.parquet in {results_dir}; "
                          "run `svi-bench run --out DIR` first")
    try:
        df = store.load_results(results_dir)
    except store.ResultsError as exc:
        raise ReportError(str(exc)) from None
    profiles = [str(p) for p in df["profile"].dropna().unique()]
    if profile is not None:
        if profile not in profiles:
            raise ReportError(f"profile {profile!r} not in {results_dir}/results.parquet; "
                              f"present: {', '.join(sorted(profiles)) or 'none'}")
        chosen = profile
    elif profiles:
        ranked = sorted(profiles, key=lambda p: PROFILE_ORDER.index(p)
                        if p in PROFILE_ORDER else len(PROFILE_ORDER))
        chosen = ranked[0]
    else:
        chosen = None
    if chosen is not None:
        df = df[df["profile"] == chosen]
    df = latest_variant(grid_rows(df)).reset_index(drop=True)
    df, rejudged = current_verdicts(df)  # never show an older policy's verdict as current
    refs, notes = _scan_references(results_dir / "references")
    return Results(results_dir, df, chosen, sorted(p for p in profiles if p != chosen), refs, notes,
                   rejudged.note, contention_note(df))


def contention_note(df: pd.DataFrame) -> str:
    """One sentence on the ok rows' ``contended`` flags: how many timed runs shared the host with
    other work (their ``run_s`` and the speed-ups built on it are then inflated), or that none
    did; empty when no row could tell (older results, or not Linux)."""
    if "contended" not in df.columns:
        return ""
    flags = df.loc[df["status"] == "ok", "contended"].dropna()
    if flags.empty:
        return ""
    n = int(flags.astype(bool).sum())
    rule = (f"other processes used more than {CONTENDED_SHARE:.0%} of the host's CPU during the "
            "timed run (host_others_share)")
    if n == 0:
        return f"Timings: none of the {len(flags)} timed runs was contended ({rule})."
    return (f"Timings: {n} of {len(flags)} timed runs were contended ({rule}); their run_s and "
            "the speed-ups built on it are inflated by the other work.")


def grid_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of grid cells: a study's own programs (``study_program``: annealing stages, warm
    starts, checkpoints) are answered on the study's page, never shown as the method's run."""
    if "study_program" not in df.columns:
        return df
    return df[~df["study_program"].fillna(False).astype(bool)]


def latest_variant(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, method, seed): a folder may hold several settings variants of a run
    (different settings hashes or data); the report shows the most recent one (``started_at``)."""
    if df.empty or "started_at" not in df.columns:
        return df
    order = df.assign(_at=df["started_at"].astype("string").fillna("")).sort_values(
        "_at", kind="stable")
    latest = order.drop_duplicates(["model", "method", "seed"], keep="last")
    return df.loc[sorted(latest.index)]


def _scan_references(folder: Path) -> tuple[list[StoredReference], list[str]]:
    refs: list[StoredReference] = []
    notes: list[str] = []
    if not folder.is_dir():
        return refs, notes
    for path in sorted(folder.glob("*.json")):
        try:
            prov = json.loads(path.read_text())
            if not isinstance(prov, dict):
                raise ValueError("not a JSON object")
        except Exception as exc:
            notes.append(f"{path.name}: unreadable provenance ({type(exc).__name__})")
            continue
        refs.append(StoredReference(path, path.with_suffix(".nc"), prov))
    return refs, notes


def parse_json(text: Any) -> dict[str, Any]:
    if not isinstance(text, str) or not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def find_reference(results: Results, model: str, data: dict[str, Any] | None,
                   precision: str = "float32") -> StoredReference | None:
    """The stored reference of ``model`` for ``data`` (the row's data key), preferring the
    precision of the model's rows, then the quality the profile uses (``smoke`` for the smoke
    profile, else ``full``)."""
    candidates = [r for r in results.references if r.model == model]
    if data:
        matching = [r for r in candidates if r.provenance.get("data") == data]
        candidates = matching or candidates
    if not candidates:
        return None
    want = reference_quality(results.profile or "")
    candidates.sort(key=lambda r: (r.provenance.get("precision", "float32") != precision,
                                   r.provenance.get("quality") != want,
                                   str(r.provenance.get("built_at", ""))))
    return candidates[0]


def load_reference_draws(ref: StoredReference) -> tuple[dict[str, np.ndarray] | None, str]:
    """Reference draws {site: (n, *shape)}, or (None, why not)."""
    if not ref.draws_path.is_file():
        return None, f"reference draws {ref.draws_path.name} are missing"
    try:
        draws, _ = arviz_adapter.load_posterior(ref.draws_path)
    except Exception as exc:
        return None, f"reference draws {ref.draws_path.name} are unreadable ({type(exc).__name__})"
    if not draws:
        return None, f"reference draws {ref.draws_path.name} hold no sites"
    return draws, ""


@dataclass
class StoredRun:
    """One run's artifact as a page shows it."""

    draws: dict[str, np.ndarray]  # {site: (chain, draw, *shape)} if ``chains``, else (draw, ...)
    other: dict[str, np.ndarray]  # sampler statistics, loss trace, ... (``arviz_adapter``)
    chains: bool  # stored with a chain axis (an MCMC run's layout), whatever the method


def load_run(results_dir: Path, row: dict[str, Any]) -> tuple[StoredRun | None, str]:
    """(the artifact of one results row, "") or (None, why not). The row's ``artifact`` column
    names the file; without one, the path it would have. The layout comes from the artifact
    itself (only single-chain runs are stored as ``svi``), not from the method's name."""
    rel = row.get("artifact")
    if isinstance(rel, str) and rel:
        path = Path(results_dir) / rel
    else:
        path = store.artifact_path(results_dir, str(row["model"]), str(row["method"]),
                                   int(row["seed"]), str(row.get("settings_hash", "")))
    if not path.is_file():
        return None, f"artifact {path.name} is missing"
    try:
        draws, other, attrs = arviz_adapter.load_run(path)
    except Exception as exc:
        return None, f"artifact {path.name} is unreadable ({type(exc).__name__})"
    return StoredRun(draws, other, attrs.get("inference") != "svi"), ""
