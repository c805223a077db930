"""Build the static report folder: index.html, models/<name>.html, methods/<name>.html, img/.

Reads only what ``svi-bench run`` stored (results table, run artifacts, references);
never runs inference. Any plot that fails becomes a visible note; a missing or failed run shows as
such; the build fails only on unusable input (ReportError, exit 2 in the CLI).

This module orchestrates: it loads the results and the folder's manifest (``reports.manifest``:
the method facts, never the engine's method code), prepares the output folder, summarises every
(model, method) and hands a ``Context`` to the page writers: ``reports.index_page`` (the
leaderboard), ``reports.model_page`` (with ``reports.figures``) and ``reports.method_page``.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from svi_bench.reports import environment as envinfo
from svi_bench.reports import loader, tables, templates
from svi_bench.reports.context import Context, method_href, model_href, registry
from svi_bench.reports.index_page import write_index
from svi_bench.reports.loader import ReportError, Results
from svi_bench.reports.manifest import Manifest, read_manifest
from svi_bench.reports.method_page import write_method_page
from svi_bench.reports.model_page import write_model_page
from svi_bench.reports.study_page import nav_links, write_study_pages
from svi_bench.reports.tables import Summary

__all__ = ["ReportError", "build_report"]

MARKER = ".svi-bench-report"  # marks a folder the builder may overwrite


def build_report(results_dir: Path, out_dir: Path, history_dir: Path | None = None,
                 profile: str | None = None, log: Callable[[str], None] = lambda m: None) -> Path:
    """Write the report for ``results_dir`` into ``out_dir``; returns the path of index.html.

    The report is built in a folder beside ``out_dir`` and swapped in whole when done, so a build
    that fails or is killed leaves the previous report as it was."""
    start = time.perf_counter()
    results = loader.load(results_dir, profile)
    final_dir = Path(out_dir)
    _check_out(final_dir, Path(results_dir))
    out_dir = _staging_dir(final_dir)
    try:
        _build_pages(results, out_dir, history_dir, log)
        _swap_in(out_dir, final_dir)
    except BaseException:
        shutil.rmtree(out_dir, ignore_errors=True)
        raise
    index = final_dir / "index.html"
    log(f"report: built in {time.perf_counter() - start:.1f} s -> {index}")
    return index


def _build_pages(results: Results, out_dir: Path, history_dir: Path | None,
                 log: Callable[[str], None]) -> None:
    """Every page, image and file of the report, written into ``out_dir``."""
    model_notes: list[str] = []
    reg = registry(results.results_dir, model_notes)
    for note in model_notes:
        log(f"report: {note}")
    results.reference_notes.extend(model_notes)
    manifest, manifest_notes = read_manifest(results.results_dir)
    for note in manifest_notes:
        log(f"report: {note}")
    results.reference_notes.extend(manifest_notes)
    models, methods, expected = _pages(results, reg, manifest)
    baseline = manifest.baseline(_row_methods(results.df))
    summaries: dict[tuple[str, str], Summary] = {}
    for m in models:
        summaries.update(tables.summarise_all(results.df, [m], expected[m], baseline))

    (out_dir / "style.css").write_text(templates.CSS)
    _copy_results_csv(results, out_dir)
    history_rel, history_note = _history(history_dir, out_dir, log)
    nav = {
        "models": [{"name": m, "href": model_href(m)} for m in models],
        "methods": [{"name": m, "href": method_href(m)} for m in methods],
        "history": history_rel,
        "studies": nav_links(results.results_dir),
        "profile": results.profile or "unknown",
        "digest": envinfo.settings_digest(results.df),
        "built": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    ctx = Context(results, out_dir, models, methods, expected, summaries, nav,
                  templates.environment(), log, manifest=manifest, baseline=baseline)

    for model in models:
        t0 = time.perf_counter()
        write_model_page(ctx, model, reg.get(model))
        ctx.timings[model] = time.perf_counter() - t0
        log(f"report: {model} page in {ctx.timings[model]:.1f} s")
    for method in methods:
        write_method_page(ctx, method)
    write_study_pages(ctx)
    write_index(ctx, out_dir / "index.html", history_note)


def _check_out(out_dir: Path, results_dir: Path) -> None:
    """Refuse an ``out_dir`` that is the results folder or a non-empty folder holding no report."""
    if out_dir.resolve() == results_dir.resolve():
        raise ReportError("--out must differ from --results (the report would mix with the runs)")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise ReportError(f"--out {out_dir} is a non-empty folder that holds no report; "
                          "choose a new or empty folder (a previous report is overwritten)")


def _staging_dir(out_dir: Path) -> Path:
    """A new empty folder beside ``out_dir`` (same file system, so the swap is a rename) where the
    report is built: a build that stops half-way, even by kill -9, leaves the old report whole."""
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_siblings(out_dir)
        staging = _sibling(out_dir, "building")
        staging.mkdir()  # the usual permissions (a temporary folder's would be owner-only)
        (staging / MARKER).write_text("written by svi-bench report; safe to overwrite\n")
        for sub in ("models", "methods", "img"):
            (staging / sub).mkdir()
    except OSError as exc:
        raise ReportError(
            f"cannot write the report folder {out_dir}: {exc.strerror or exc}") from None
    return staging


def _sibling(out_dir: Path, role: str) -> Path:
    """A fresh hidden name beside ``out_dir`` for a report being built or replaced."""
    return out_dir.parent / f".{out_dir.name}.{role}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _remove_stale_siblings(out_dir: Path) -> None:
    """Remove what builds killed half-way left beside ``out_dir`` (their process is gone); a
    sibling of a build still running (another process) is left alone."""
    for path in out_dir.parent.glob(f".{out_dir.name}.*-*-*"):
        role, _, rest = path.name[len(out_dir.name) + 2:].partition("-")
        pid = rest.partition("-")[0]
        if role not in ("building", "old") or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _swap_in(staging: Path, out_dir: Path) -> None:
    """Put the finished report ``staging`` in place of ``out_dir``: one atomic exchange of the two
    folders where the system has it (Linux ``renameat2``), else two renames; the old report is
    then removed."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return
    if not _exchange(staging, out_dir):
        old = _sibling(out_dir, "old")
        os.rename(out_dir, old)
        os.rename(staging, out_dir)
        staging = old
    shutil.rmtree(staging, ignore_errors=True)  # now the old report


def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _pages(results: Results, reg, manifest: Manifest
           ) -> tuple[list[str], list[str], dict[str, list[str]]]:
    """(models, methods, each model's methods): the registry's models and those the manifest or
    the rows name; a model's methods are those the manifest records for it (a model it does not
    record, as in a folder without one, is expected to run ``_fallback_methods``) plus any its
    rows hold, in the manifest's display order."""
    df = results.df
    present_models = [str(m) for m in df["model"].dropna().unique()] if len(df) else []
    models = list(reg) + sorted({*present_models, *manifest.models} - set(reg))
    fallback = _fallback_methods(df, manifest)
    expected = {}
    for m in models:
        rows = df[df["model"] == m] if len(df) else df
        recorded = manifest.expected_methods(m) if m in manifest.models else fallback
        expected[m] = manifest.method_order([*recorded, *_row_methods(rows)])
    methods = manifest.method_order([x for ms in expected.values() for x in ms])
    return models, methods, expected


def _row_methods(df) -> list[str]:
    """The methods of ``df``'s rows in table order (the grid's: the order unrecorded methods
    keep)."""
    return list(dict.fromkeys(str(x) for x in df["method"].dropna())) if len(df) else []


def _fallback_methods(df, manifest: Manifest) -> list[str]:
    """What a model the manifest does not record (every model, in a folder without one) is
    expected to run: each method of the rows, in table order, with a leaderboard column of its
    own. These are the columns where the leaderboard shows the model's missing runs as not run,
    so its model page and the method pages count them alike."""
    return [m for m in _row_methods(df) if manifest.column_of(m) == m]


def _copy_results_csv(results: Results, out_dir: Path) -> None:
    src = results.results_dir / "results.csv"
    try:
        if src.is_file():
            shutil.copyfile(src, out_dir / "results.csv")
        else:
            results.df.to_csv(out_dir / "results.csv", index=False)
    except OSError:
        (out_dir / "results.csv").write_text("results.csv could not be copied\n")


def _history(history_dir: Path | None, out_dir: Path, log) -> tuple[str, str]:
    """(relative link to history.html or "", note for the index)."""
    if history_dir is None:
        return "", ""
    try:
        from svi_bench.benchmarks.regress.history import build_history
    except ImportError as exc:
        return "", f"not available ({type(exc).__name__}: {exc})"
    try:
        path = build_history(Path(history_dir), out_dir)
    except Exception as exc:  # another module's failure must not stop the report
        log(f"report: runtime history failed: {type(exc).__name__}: {exc}")
        return "", f"failed to build ({type(exc).__name__}: {exc})"
    if path is None:
        return "", f"no stored benchmark runs in {history_dir}"
    try:
        rel = Path(path).resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:
        return "", f"history page {path} is outside the report folder"
    return rel, ""
