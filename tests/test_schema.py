"""The docs' results schema page documents every results column and every metric the suite
writes: its column tables are generated at build time from the one table of columns
(``benchmarks.scoring.columns``), and every column a run writes is in that table."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from svi_bench.benchmarks import docs_pages
from svi_bench.benchmarks.grid.schema import COLUMNS
from svi_bench.benchmarks.scoring import columns
from svi_bench.benchmarks.scoring.metrics import AGREEMENT_KEYS, METRIC_INFO

DOCS = Path(__file__).resolve().parents[1] / "docs"
SCHEMA_PAGE = DOCS / "reference" / "schema.md"


def _schema_page() -> str:
    return docs_pages.expand(SCHEMA_PAGE.read_text(), DOCS)


def test_every_column_and_metric_is_on_the_schema_page():
    page = _schema_page()
    missing = [c.name for c in COLUMNS if f"`{c.name}`" not in page]
    missing += [k for k in METRIC_INFO if f"`{k}`" not in page]
    assert not missing, f"docs/reference/schema.md lacks: {missing}"


def test_schema_page_tables_are_generated_from_the_columns_table():
    assert docs_pages.markers(SCHEMA_PAGE.read_text()) == ["columns-run", "columns-scores"]
    page = _schema_page()
    assert columns.markdown_table(columns.RUN) in page
    assert columns.markdown_table(columns.SCORE, columns.JUDGEMENT, columns.REPORT) in page


def test_a_column_declared_tomorrow_is_on_the_schema_page(monkeypatch):
    new = columns.Column("tomorrows_score", "", "nats", "a score declared after the docs", "score")
    monkeypatch.setattr(columns, "TABLE", (*columns.TABLE, new))
    assert "| `tomorrows_score` | nats | a score declared after the docs |" in _schema_page()


def test_one_entry_per_name_and_complete_facts():
    names = [c.name for c in columns.TABLE]
    assert len(names) == len(set(names))
    for c in columns.TABLE:
        assert c.kind in (columns.RUN, columns.SCORE, columns.JUDGEMENT, columns.REPORT), c
        assert len(c.description) > 10, c
        assert bool(c.dtype) == (c.kind == columns.RUN), c  # the store types run columns only
    assert columns.FLOORED == (*AGREEMENT_KEYS, "pred_prob_mad", "ppc_w1")
    assert all(unit for unit, _ in METRIC_INFO.values())


def test_the_report_describes_every_metric_it_shows():
    from svi_bench.reports import tables

    for name, _ in tables.TABLE_METRICS:
        unit, description = tables.metric_info(name)
        assert description, name


def _written_columns(spec, method: str, draws: dict, reference_draws: dict) -> set[str]:
    from svi_bench.benchmarks.scoring.evaluate import evaluate
    from svi_bench.benchmarks.scoring.references import Reference

    ds = spec.make_data()
    row = {"final_elbo": -10.0, "min_ess_bulk": 150.0, "min_ess_tail": 150.0, "max_rhat": 1.0,
           "divergences": 0, "run_s": 1.0, "compile_s": 1.0, "grad_evals": 1000.0}
    reference = Reference(spec.name, "exact", reference_draws, {"ok": True})
    elbos = np.random.default_rng(0).normal(size=64)
    out = set(evaluate(spec, ds, method, row, draws, reference, elbos))
    out |= set(evaluate(spec, ds, method, row, draws, None, elbos))
    return out


def test_every_column_a_run_writes_is_in_the_table():
    """The scoring columns of ok rows, for an SVI guide, NUTS and a predictive-space model (draws
    (chain, draw, *shape), as every method returns them)."""
    from svi_bench.models import REGISTRY

    rng = np.random.default_rng(0)
    coin = REGISTRY["coin"]
    written = _written_columns(coin, "manual:beta", {"latent_fairness": rng.beta(13, 9, (1, 400))},
                               {"latent_fairness": rng.beta(13, 9, 4000)})
    written |= _written_columns(coin, "nuts", {"latent_fairness": rng.beta(13, 9, (2, 200))},
                                {"latent_fairness": rng.beta(13, 9, 4000)})
    shapes = {"nn/layers.0.kernel": (2, 4), "nn/layers.0.bias": (4,),
              "nn/layers.1.kernel": (4, 3), "nn/layers.1.bias": (3,),
              "nn/layers.2.kernel": (3, 1), "nn/layers.2.bias": (1,)}
    written |= _written_columns(REGISTRY["bnn"], "autonormal",
                                {k: rng.normal(size=(1, 20, *s)) for k, s in shapes.items()},
                                {k: rng.normal(size=(40, *s)) for k, s in shapes.items()})
    stale = {c.name for c in columns.of_kind(columns.SCORE, columns.JUDGEMENT)} - written
    assert not stale, f"the table lists columns no run writes: {sorted(stale)}"
    assert not written - set(columns.BY_NAME), sorted(written - set(columns.BY_NAME))
