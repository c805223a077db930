"""The README documents every results column and every metric the suite writes."""

from __future__ import annotations

from pathlib import Path

from benchmarks.grid.schema import COLUMNS
from benchmarks.scoring.metrics import METRIC_INFO

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_column_and_metric_is_in_the_readme():
    missing = [c.name for c in COLUMNS if f"`{c.name}`" not in README]
    missing += [k for k in METRIC_INFO if f"`{k}`" not in README]
    assert not missing, f"README lacks: {missing}"
