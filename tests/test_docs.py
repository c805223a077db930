"""The docs: a short README whose commands the CLI accepts, reference pages generated from the
declarations they document (a changed declaration changes the page), and a Sphinx build with no
warning (CI runs it here, in the test session)."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from svi_bench.benchmarks import docs_pages, measure

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def test_readme_is_short_and_names_the_ci_command():
    text = README.read_text()
    assert len(text.encode()) < 10_000, len(text.encode())
    assert "nox -s bench" in text and "nox -s tests" in text
    assert "nox -s tests" in (ROOT / ".ci" / "run").read_text()
    assert "](docs/report-index.png)" in text


def _readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines()
            if line.startswith("svi-bench ")]


def test_every_readme_command_is_accepted_by_the_command_line():
    """Every ``svi-bench`` line of the README parses (options, sub-commands) as it stands; the
    "Your own model" and "Your own method" blocks also run end to end (tests/test_user_model.py,
    tests/test_methods.py)."""
    from svi_bench.benchmarks.cli import build_parser
    from svi_bench.reports.cli import build_parser as report_parser

    commands = _readme_commands()
    assert {c.split()[1] for c in commands} >= {"list", "run", "report", "study", "check"}
    for command in commands:
        argv = shlex.split(command, comments=True)[1:]
        if argv[0] == "report":  # console.main hands it to the report's own command line
            report_parser().parse_args(["build", *argv[1:]])
        else:
            build_parser().parse_args(argv)


def test_readme_links_into_the_docs_resolve():
    links = re.findall(r"\]\((docs/[^)#]+)\)", README.read_text())
    assert links and not [link for link in links if not (ROOT / link).is_file()]


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)


def test_every_marker_names_a_generated_block_and_every_block_is_used():
    used = [name for page in _pages() for name in docs_pages.markers(page.read_text())]
    for name in used:
        assert docs_pages.render(name, DOCS).startswith(("|", "No measurement", "`nox -s bench`",
                                                        "No `measure bench`")), name
    assert sorted(set(used)) == sorted(docs_pages.generated_blocks(DOCS))
    with pytest.raises(ValueError, match="unknown generated block 'nope'; valid: columns-run"):
        docs_pages.render("nope", DOCS)


def test_verdict_page_follows_the_declared_thresholds(monkeypatch):
    from svi_bench.benchmarks.scoring import verdict

    page = (DOCS / "reference" / "verdicts.md").read_text()
    assert "| `w1_max` | ref sd | 0.2 | 0.5 | W1/sd" in docs_pages.expand(page, DOCS)
    monkeypatch.setitem(verdict.THRESHOLDS, "w1_max", (0.25, 0.61))
    monkeypatch.setattr(verdict, "KHAT_UNRELIABLE", 0.75)
    expanded = docs_pages.expand(page, DOCS)
    assert "| `w1_max` | ref sd | 0.25 | 0.61 | W1/sd" in expanded
    assert "unreliable above 0.75" in expanded


def test_nuts_and_gate_thresholds_follow_their_declarations(monkeypatch):
    from svi_bench.benchmarks.regress import thresholds
    from svi_bench.benchmarks.scoring import evaluate

    monkeypatch.setitem(evaluate.NUTS_HEALTH, "rhat_warn", 1.02)
    assert "| max R-hat above | 1.02 | 1.1 |" in docs_pages.render("nuts-health", DOCS)
    monkeypatch.setattr(thresholds, "TIME_THRESHOLD", 0.7)
    assert "| `TIME_THRESHOLD` | 0.7 | Fail when" in docs_pages.render("regress-thresholds", DOCS)


def test_models_methods_and_studies_pages_follow_their_registries(monkeypatch):
    from svi_bench.benchmarks.methods import registry
    from svi_bench.benchmarks.studies import STUDIES
    from svi_bench.models import REGISTRY

    coin = REGISTRY["coin"]
    models = docs_pages.render("models", DOCS)
    assert "| `coin` |" in models and "| 1 | exact | `beta`, `normal` |" in models
    copy = dataclasses.replace(coin, name="coin_docs_copy", description="a copy for the docs test")
    monkeypatch.setitem(REGISTRY, "coin_docs_copy", copy)
    assert "| `coin_docs_copy` |" in docs_pages.render("models", DOCS)

    registry.prefixes()
    nuts = registry.REGISTRY["nuts"]
    fake = dataclasses.replace(nuts, name="docs_probe", family="vi", baseline=False,
                               description="a method declared after the docs")
    monkeypatch.setitem(registry.REGISTRY, "docs_probe", fake)
    assert "| `docs_probe` | vi | `num_samples` | `benchmarks.methods.nuts` | a method declared" \
        in docs_pages.render("methods", DOCS)

    study = dataclasses.replace(STUDIES["seeds"], name="docs_probe", question="Is it documented?")
    monkeypatch.setitem(STUDIES, "docs_probe", study)
    assert "| `docs_probe` | 001, Histogram of Final Loss Distributions | Is it documented? |" \
        in docs_pages.render("studies", DOCS)


def test_measurement_records_render_as_a_table(tmp_path):
    assert docs_pages.measurements_table(tmp_path) == "No measurement records yet."
    measure.write_record("probe", ["svi-bench", "run", "--profile", "smoke"],
                         {"cold_s": 12.345, "rows": 3}, tmp_path)
    table = docs_pages.measurements_table(tmp_path).splitlines()
    assert table[0] == "| record | figures | commit | recorded | machine | command |"
    assert table[2].startswith("| probe | cold_s 12.3; rows 3 | `")
    assert table[2].endswith("| `svi-bench run --profile smoke` |")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not a measurement record"):
        docs_pages.measurements_table(tmp_path)


def test_the_checked_in_measurements_are_records_of_the_measure_command():
    records = [json.loads(p.read_text()) for p in sorted((DOCS / "measurements").glob("*.json"))]
    assert records
    for record in records:
        assert {"name", "recorded_at", "commit", "machine", "command", "figures"} <= set(record)
        assert record["figures"] and record["machine"]["cpus"]


def _have_sphinx() -> bool:
    return all(importlib.util.find_spec(m) for m in ("sphinx", "myst_parser",
                                                      "pydata_sphinx_theme"))


def test_docs_build_without_a_warning(tmp_path):
    """``nox -s docs``'s build (warnings are errors) into a scratch folder; under CI the docs
    extra is installed (the test extra holds it), so a missing Sphinx is a failure there."""
    if not _have_sphinx():
        if os.environ.get("CI") == "true":
            pytest.fail("sphinx, myst-parser or pydata-sphinx-theme missing under CI: "
                        "install the test extra")
        pytest.skip("sphinx, myst-parser or pydata-sphinx-theme not installed (pip install -e .[docs])")
    out = tmp_path / "html"
    done = subprocess.run([sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
                           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONHASHSEED": "0", "JAX_PLATFORMS": "cpu"})
    assert done.returncode == 0, done.stderr[-3000:]
    verdicts = (out / "reference" / "verdicts.html").read_text()
    assert "w1_max" in verdicts and "<table" in verdicts
    assert "<table" in (out / "reference" / "measurements.html").read_text()
    assert "compare" in (out / "reference" / "api.html").read_text()


def test_the_newest_bench_record_renders_as_the_cost_table(tmp_path):
    assert docs_pages.bench_costs(tmp_path) == "No `measure bench` record yet."
    for when, wall in (("2026-12-08T01:00:00Z", 900.0), ("2026-12-08T02:00:00Z", 500.0)):
        record = {"name": "bench", "recorded_at": when, "commit": "abc1234",
                  "machine": {"cpus": 2}, "command": ["nox", "-s", "bench"],
                  "figures": {"wall_s": wall, "others_cpu_share": 0.01,
                              "run_summary": "2 workers, ...",
                              "per_model": {"bnn": {"runs": 12, "ok": 12, "compile_s": 80.0,
                                                    "run_s": 100.0, "mcmc_runs": 3,
                                                    "mcmc_unhealthy": 3}}}}
        (tmp_path / f"bench-{wall:.0f}.json").write_text(json.dumps(record))
    text = docs_pages.bench_costs(tmp_path)
    assert text.startswith("`nox -s bench` at commit `abc1234` on 2 CPUs (2026-12-08T02:00:00Z): "
                           "500 s wall")
    assert "other processes using 1% of the machine" in text
    assert "| `bnn` | 12 of 12 | 80 | 100 | 3 of 3 |" in text
    assert "per_model" not in docs_pages.measurements_table(tmp_path)
