"""The results table: one row per run identity (KEY), every metric a named number with a unit.

The columns and their facts (dtype, unit, meaning) are stated once, in
``benchmarks.scoring.columns.TABLE``; this module gives the grid what it needs of them: the run
columns every row has, in order and with their pandas dtype, the row key and the statuses.
"""

from __future__ import annotations

from svi_bench.benchmarks.scoring.columns import RUN, Column, of_kind
from svi_bench.benchmarks.scoring.columns import markdown_table as _markdown_table

#: The run columns, in order: every row has them and the store gives them these dtypes. Scoring
#: adds the ``score`` and ``judgement`` columns of ``benchmarks.scoring.columns`` to ok rows.
COLUMNS: tuple[Column, ...] = of_kind(RUN)

COLUMN_NAMES = tuple(c.name for c in COLUMNS)
#: A run's identity: different settings or data add rows, never replace another identity's rows.
KEY = ("model", "method", "seed", "settings_hash", "data")
STATUSES = ("ok", "failed", "not_applicable")


def markdown_table() -> str:
    """The run columns as a Markdown table, for the docs."""
    return _markdown_table(RUN)


__all__ = ["COLUMNS", "COLUMN_NAMES", "KEY", "STATUSES", "Column", "markdown_table"]
