"""The leaderboard (index.html): one row per model, one column per leaderboard column of the
manifest (a method's own, or one several share: the manual guides'), the notes that explain
failed, partial and unjudged cells, and a row of counts per method."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from svi_bench.benchmarks.scoring.verdict import KHAT_UNRELIABLE
from svi_bench.reports import environment as envinfo
from svi_bench.reports.context import (
    COUNT_COLUMNS,
    Context,
    count,
    entry,
    method_href,
    model_href,
    new_counts,
    reference_badge,
    registry,
)
from svi_bench.reports.manifest import MANUAL_COLUMN
from svi_bench.reports.tables import Summary, fmt_speedup


def write_index(ctx: Context, path: Path, history_note: str) -> None:
    columns = _columns(ctx)
    rows, notes = _model_rows(ctx, columns)
    column_heads = [_column_head(ctx, c) for c in columns]
    html = ctx.env.get_template("index.html").render(
        title="Leaderboard", root="", nav=ctx.nav, columns=column_heads, rows=rows, notes=notes,
        method_rows=_method_rows(ctx), environment=envinfo.describe(ctx.results),
        history_note=history_note, reference_notes=ctx.results.reference_notes,
        budget_notes=[s.budget_note for s in ctx.summaries.values() if s.budget_note],
        verdict_note=ctx.results.verdict_note, timing_note=ctx.results.timing_note,
        khat_limit=KHAT_UNRELIABLE, count_columns=COUNT_COLUMNS)
    path.write_text(html)


def _column_head(ctx: Context, column: str) -> dict[str, str]:
    """A column's heading: a method's own links to its page; a shared one names its group and
    says what an empty cell means."""
    if column in ctx.methods:
        return {"name": column, "href": method_href(column), "empty": ""}
    if column == MANUAL_COLUMN:
        return {"name": "manual guides", "href": "", "empty": "no manual guide"}
    return {"name": column, "href": "", "empty": f"no {column} method"}


def _columns(ctx: Context) -> list[str]:
    columns: list[str] = []
    for m in ctx.methods:
        col = ctx.manifest.column_of(m)
        if col not in columns:
            columns.append(col)
    return columns


def _model_rows(ctx: Context, columns: list[str]) -> tuple[list[dict], list[dict]]:
    """(one row per model with its cells, the numbered notes the cells point to)."""
    rows: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    for model in ctx.models:
        cells = []
        for col in columns:
            entries = []
            for method in ctx.expected[model]:
                if ctx.manifest.column_of(method) != col:
                    continue
                e = entry(ctx, ctx.summaries[(model, method)], "")
                _add_note(e, model, method, notes)
                entries.append(e)
            if not entries and col in ctx.methods:  # a method's own column: "not run"
                missing = Summary(model, col)
                entries.append(entry(ctx, missing, ""))
            cells.append(entries)
        rows.append({"model": model, "href": model_href(model), "registered": model in registry(),
                     "ref": reference_badge(ctx, model), "cells": cells})
    return rows, notes


def _add_note(e: dict[str, Any], model: str, method: str, notes: list[dict[str, Any]]) -> None:
    """A numbered note below the table for a failed, n/a, partial or unjudged cell."""
    s = e["s"]
    if not (s.status in ("failed", "not_applicable", "partial") or (s.n_ok and not s.verdict)):
        return
    e["note_id"] = len(notes) + 1
    notes.append({"id": e["note_id"], "model": model, "method": method,
                  "model_href": model_href(model),
                  "method_href": method_href(method),
                  "label": s.label if s.status != "partial"
                  else f"{s.n_failed} of {s.n_seeds} seeds failed",
                  "text": s.reason or "no reason recorded"})


def _method_rows(ctx: Context) -> list[dict[str, Any]]:
    """Per method: verdict and status counts over the models, median speed-ups over the
    baseline."""
    method_rows = []
    for method in ctx.methods:
        counts = new_counts()
        walls, grads = [], []
        for model in ctx.models:
            if method not in ctx.expected[model]:
                continue
            s = ctx.summaries[(model, method)]
            count(counts, s)
            if np.isfinite(s.value("speedup_wall")):
                walls.append(s.value("speedup_wall"))
            if np.isfinite(s.value("speedup_grad")):
                grads.append(s.value("speedup_grad"))
        method_rows.append({"name": method, "href": method_href(method), "counts": counts,
                            "speed_wall": fmt_speedup(_median(walls)),
                            "speed_grad": fmt_speedup(_median(grads))})
    return method_rows


def _median(values: list[float]) -> float:
    return float(np.median(values)) if values else math.nan
