"""A study: one question of a source document, declared as data and answered from result rows.

A study names, per profile, the cells it needs (models, methods, seeds and named variants: settings
overrides, the ``--set`` of ``run``, and model sizes, the ``--size``), how its rows reduce to a
derived table (``derive``), the sentence that answers its question from that table (``answer``)
and the figure that shows it. Running the cells is the grid's business
(``benchmarks.grid.runner``); this module turns a study into the grid's cells and the stored rows
back into the study's table. A cell two variants (or two studies) share is one run, one row: the
study's rows are selected by run identity from its plan, never by the ``study`` column, which
only records the study that last wrote the row.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd

from svi_bench.benchmarks.artifacts import atomic_write
from svi_bench.benchmarks.grid import run_spec, store
from svi_bench.benchmarks.grid.profiles import payload_hash
from svi_bench.benchmarks.grid.run_spec import RunSpec
from svi_bench.benchmarks.methods import registry
from svi_bench.models import REGISTRY


@dataclass(frozen=True)
class Variant:
    """One named setting of a study: ``overrides`` as ``run --set``, ``sizes`` as ``run --size``
    ({model: {param: value}}), ``params`` the numbers the derived table groups by."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    overrides: Mapping[str, Any] = field(default_factory=dict)
    sizes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Scope:
    """What a study runs at one profile. ``methods`` empty: every method of each model (minus
    ``exclude``); a ``manual:<guide>`` method runs only on the models that have that guide."""

    models: tuple[str, ...]
    methods: tuple[str, ...]
    seeds: int
    variants: tuple[Variant, ...]
    exclude: tuple[str, ...] = ()


@dataclass(frozen=True)
class Study:
    """A question, where it comes from, what to run per profile and how the rows answer it.

    ``derive(rows) -> table`` and ``answer(table) -> sentence`` are pure functions of the numbers
    (the sentence carries the noise that qualifies it); ``figure(rows, table)`` returns a
    matplotlib Figure for the report.
    """

    name: str
    question: str
    document: str
    section: str
    scopes: Mapping[str, Scope]
    derive: Callable[[pd.DataFrame], pd.DataFrame]
    answer: Callable[[pd.DataFrame], str]
    figure: Callable[[pd.DataFrame, pd.DataFrame], Any] | None = None
    figure_caption: str = ""
    #: A study whose programs are not grid cells (annealing stages, warm starts, checkpoints)
    #: runs them itself: ``execute(StudyRun)`` adds its rows through ``run.store``. Its rows are
    #: then selected by the ``study`` column and profile, not by a plan (see ``select_own_rows``).
    execute: Callable[[StudyRun], None] | None = None
    #: A study that runs nothing and reads rows other runs wrote (``diagnostics``) picks them
    #: itself: ``select(results, profile)`` replaces the ``study`` column's selection; its
    #: ``execute`` runs nothing.
    select: Callable[[pd.DataFrame, str], pd.DataFrame] | None = None
    #: What else defines a study's own programs at a profile (its schedule: steps, checkpoints,
    #: learning rates), beyond the scope. Part of ``fingerprint``: rows of an earlier definition
    #: stay in the results file but are not mixed into the answer of the current one.
    program_settings: Callable[[str], Any] | None = None
    #: Each seed its own program (``plan_study``): the grid runs a cell's seeds in one program
    #: and gives each seed an equal share of its run time, so a study comparing times with their
    #: spread over seeds (``timing``) needs one timed program per seed.
    seed_programs: bool = False

    def fingerprint(self, profile: str) -> str:
        """Hash of the scope and program settings at ``profile``: tags own-program rows
        (``study_settings``) so ``select_own_rows`` keeps only the current definition's."""
        extra = self.program_settings(profile) if self.program_settings is not None else None
        return payload_hash({"study": self.name, "scope": asdict(self.scopes[profile]),
                             "programs": asdict(extra) if is_dataclass(extra) else extra})

    @property
    def source(self) -> str:
        return f"{self.document}, \"{self.section}\""


@dataclass(frozen=True)
class StudyRun:
    """What ``Study.execute`` gets: the profile, the seeds (None: the scope's 0..N-1), a store
    whose ``add(rows)`` tags rows with the study (rows carry their own ``variant``) and whose
    ``done(identity)`` says a run is stored ok (skip it when ``resume``), and ``progress(text)``
    for the progress line (e.g. the stage, alpha and loss of an annealing run)."""

    profile: str
    seeds: tuple[int, ...] | None
    store: Any
    resume: bool
    progress: Callable[[str], None]
    out_dir: Path

    def seed_list(self, scope: Scope) -> list[int]:
        return list(self.seeds) if self.seeds is not None else list(range(scope.seeds))

    def seeds_to_run(self, scope: Scope, identities: Callable[[int], Iterable[tuple]]
                     ) -> list[int]:
        """The scope's seeds, less (on resume) those whose every row identity is stored ok: a
        seed's rows are one chain (stages, batches, fits), run again whole or not at all."""
        return [s for s in self.seed_list(scope)
                if not (self.resume and all(self.store.done(k) for k in identities(s)))]


@dataclass(frozen=True)
class PlannedCell:
    """A grid cell of a study with the variants that need it (two variants may share a cell)."""

    cell: RunSpec
    variants: tuple[str, ...]


def _methods_of(spec, scope: Scope) -> list[str]:
    offered = registry.methods_for(spec)
    names = list(scope.methods) or offered
    per_model = tuple(registry.prefixes())  # manual:<guide>: only the model's own guides
    return [m for m in names
            if m not in scope.exclude and (m in offered or not m.startswith(per_model))]


def plan_study(study: Study, profile: str, seeds: Sequence[int] | None = None) -> list[PlannedCell]:
    """Every cell of ``study`` at ``profile`` (``seeds`` replaces the scope's 0..N-1), each once
    (once per seed for a study with ``seed_programs``).

    Raises ValueError for a profile the study does not declare or an impossible variant."""
    if profile not in study.scopes:
        raise ValueError(f"study {study.name!r} has no {profile!r} profile; valid: "
                         f"{', '.join(study.scopes)}")
    scope = study.scopes[profile]
    seed_list = list(seeds) if seeds is not None else list(range(scope.seeds))
    merged: dict[tuple[str, str, str], PlannedCell] = {}
    for variant in scope.variants:
        models = [m for m in scope.models if not variant.sizes or m in variant.sizes]
        for name in models:
            spec = REGISTRY[name]
            sizes = {k: dict(v) for k, v in variant.sizes.items()}
            for cell in run_spec.plan([spec], _methods_of(spec, scope), seed_list, profile,
                                    dict(variant.overrides), sizes):
                key = (cell.spec.name, cell.method, cell.hash)
                if key in merged:
                    old = merged[key]
                    merged[key] = replace(old, variants=old.variants + (variant.name,))
                else:
                    merged[key] = PlannedCell(cell, (variant.name,))
    if not study.seed_programs:
        return list(merged.values())
    return [replace(p, cell=replace(p.cell, seeds=(seed,)))
            for p in merged.values() for seed in p.cell.seeds]


def identities(planned: Sequence[PlannedCell]) -> dict[tuple, tuple[str, ...]]:
    """{run identity (``store.identity``): the variants that need that run}."""
    out: dict[tuple, tuple[str, ...]] = {}
    for p in planned:
        data = json.dumps(p.cell.data_key, sort_keys=True)
        for seed in p.cell.seeds:
            key = store.identity({"model": p.cell.spec.name, "method": p.cell.method, "seed": seed,
                                  "settings_hash": p.cell.hash, "data": data})
            out[key] = out.get(key, ()) + p.variants
    return out


class TaggingStore:
    """The results store seen through a study: every row added gets its ``study`` and ``variant``
    columns (the variants sharing the cell, comma-joined) before it is stored. The runner calls
    ``add`` before its ``on_done`` callback, so the tag must be set here, not there."""

    def __init__(self, inner: store.ResultsStore, study: str, planned: Sequence[PlannedCell]):
        self.inner = inner
        self.study = study
        self._variants = {p.cell.hash: ",".join(p.variants) for p in planned}

    @property
    def out_dir(self) -> Path:
        return self.inner.out_dir

    @property
    def kept_back(self) -> list[dict[str, Any]]:
        return self.inner.kept_back

    def done(self, key: tuple) -> bool:
        return self.inner.done(key)

    def add(self, rows) -> None:
        tagged = []
        for row in rows:
            row = dict(row)
            row["study"] = self.study
            row["variant"] = self._variants.get(str(row.get("settings_hash")), "")
            tagged.append(row)
        self.inner.add(tagged)

    def frame(self) -> pd.DataFrame:
        return self.inner.frame()


def select_rows(study: Study, variants: Sequence[Variant], results: pd.DataFrame,
                planned: Sequence[PlannedCell]) -> pd.DataFrame:
    """The study's rows of ``results``, chosen by identity; a run two variants share appears once
    per variant, with that variant's name and ``params`` as columns. Planned runs missing from
    the table appear as rows of status ``missing``, so the derived table can count them. Rows
    judged under an older verdict policy are re-judged first (``scoring.rejudge``)."""
    from svi_bench.benchmarks.scoring.rejudge import current_verdicts

    results, _ = current_verdicts(results)
    wanted = identities(planned)
    params = {v.name: dict(v.params) for v in variants}
    by_key = {store.identity(r): r for r in results.to_dict("records")} if len(results) else {}
    out = []
    for key, names in wanted.items():
        row = by_key.get(key)
        if row is None:
            row = dict(zip(("model", "method", "seed", "settings_hash", "data"), key,
                           strict=True), status="missing")
        for name in dict.fromkeys(names):
            out.append({**row, "variant": name, **params.get(name, {})})
    return pd.DataFrame(out)


class OwnRowsStore(TaggingStore):
    """The store a study with its own programs writes through: rows keep their ``variant`` and
    are marked ``study_program`` (no grid cell: the report's leaderboard leaves them out)."""

    def __init__(self, inner: store.ResultsStore, study: str, fingerprint: str = ""):
        super().__init__(inner, study, ())
        self.fingerprint = fingerprint

    def add(self, rows) -> None:
        self.inner.add([{**dict(row), "study": self.study, "study_program": True,
                         "study_settings": self.fingerprint} for row in rows])


def select_own_rows(study: Study, profile: str, results: pd.DataFrame) -> pd.DataFrame:
    """The rows a study with its own programs (``execute``) wrote at ``profile`` under its current
    definition (``Study.fingerprint``): its programs are no grid cells, so no other study or run
    shares them and the ``study`` and ``study_settings`` columns select them."""
    if study.select is not None:
        return study.select(results, profile).reset_index(drop=True)
    if not len(results) or "study" not in results.columns:
        return pd.DataFrame()
    mine = results[(results["study"] == study.name) & (results["profile"] == profile)]
    current = (mine["study_settings"] == study.fingerprint(profile)) if (
        "study_settings" in mine.columns) else pd.Series(False, index=mine.index)
    return mine[current.fillna(False).astype(bool)].reset_index(drop=True)


def write_outputs(study: Study, profile: str, rows: pd.DataFrame, out_dir: Path) -> tuple[
        pd.DataFrame, str]:
    """Derive the table, compute the answer and write ``studies/NAME.parquet`` (the table),
    ``NAME.rows.parquet`` (the rows it came from) and ``NAME.json`` (question, answer, profile)."""
    folder = Path(out_dir) / "studies"
    folder.mkdir(parents=True, exist_ok=True)
    derived = study.derive(rows).reset_index(drop=True)
    derived.insert(0, "profile", profile)
    answer = study.answer(derived)
    slim = _storable(rows)
    atomic_write(folder / f"{study.name}.parquet", lambda p: derived.to_parquet(p, index=False))
    atomic_write(folder / f"{study.name}.rows.parquet", lambda p: slim.to_parquet(p, index=False))
    meta = {"study": study.name, "question": study.question, "source": study.source,
            "profile": profile, "answer": answer, "rows": int(len(rows))}
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write(folder / f"{study.name}.json", lambda p: Path(p).write_text(text))
    return derived, answer


def _storable(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows with object columns made parquet-safe (mixed types become strings)."""
    df = rows.copy()
    for col in df.columns:
        if df[col].dtype == object:
            try:
                df[col] = pd.to_numeric(df[col])
            except (TypeError, ValueError):
                df[col] = df[col].map(lambda v: None if v is None or v is pd.NA
                                      or (isinstance(v, float) and v != v) else str(v))
    return df


def load_outputs(out_dir: Path, name: str) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """(derived table, rows, metadata) as written by ``write_outputs``; missing parts are empty."""
    folder = Path(out_dir) / "studies"
    derived = pd.read_parquet(folder / f"{name}.parquet")
    rows_path = folder / f"{name}.rows.parquet"
    rows = pd.read_parquet(rows_path) if rows_path.is_file() else pd.DataFrame()
    meta_path = folder / f"{name}.json"
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    return derived, rows, meta
