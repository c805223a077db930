"""The static report: built from a small synthetic results folder, no inference, no browser.

The folder holds an ok NUTS run and an ok manual guide (with artifacts and a reference), a failed
run whose error is an HTML injection attempt, a not-applicable run, an ok run whose artifact is
corrupt, a model that is not in the registry, and every other registered model with no rows.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import types
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

from svi_bench.benchmarks.grid import store  # noqa: E402
from svi_bench.benchmarks.scoring import arviz_adapter  # noqa: E402
from svi_bench.benchmarks.scoring.verdict import VERDICT_POLICY  # noqa: E402
from svi_bench.models import REGISTRY  # noqa: E402
from svi_bench.reports import build as build_module  # noqa: E402
from svi_bench.reports.cli import main  # noqa: E402
from svi_bench.reports.model_page import write_model_page  # noqa: E402

INJECTION = "<script>alert(1)</script>"
NA_REASON = "AutoBNAFNormal needs a latent dimension of at least 2 (test)"
COIN_DATA = {"heads": 12, "seed": 0, "tails": 8}


def _row(method: str, seed: int = 0, status: str = "ok", **extra) -> dict:
    row = {
        "model": "coin", "method": method, "seed": seed, "profile": "smoke",
        "settings_hash": f"hash-{method}", "settings": "{}", "data": json.dumps(COIN_DATA),
        "status": status, "error": "", "warning": "", "started_at": "2025-01-01T00:00:00+00:00",
        "jax_version": "0.0-test", "numpyro_version": "0.0-test", "xla_flags": "",
        "seeds_in_program": 1, "latent_dim": 1,
    }
    if status == "ok":
        row.update(compile_s=2.0, run_s=0.5, program_run_s=0.5, grad_evals=1000.0,
                   num_draws=400, verdict_policy=VERDICT_POLICY)
    row.update(extra)
    return row


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    rows = [
        _row("nuts", w1_max=0.12, w1_max_floor=0.15, verdict="pass",
             verdict_reason="all judged metrics within thresholds", reference_ok=True,
             divergences=0, max_rhat=1.01, min_ess_bulk=300.0),
        _row("manual:beta", grad_evals=300.0, compile_s=1.0, run_s=0.1, w1_max=0.3,
             w1_max_floor=0.07, psis_khat=0.4, verdict="warn", converged_step=120.0,
             verdict_reason="w1_max=0.3 beyond warn threshold 0.2", reference_ok=True,
             warning="loss shows no plateau"),
        _row("manual:beta", seed=1, grad_evals=300.0, compile_s=1.0, run_s=0.1, w1_max=0.1,
             w1_max_floor=0.07, verdict="pass", verdict_reason="ok", reference_ok=True,
             peak_rss_bytes=600 * 2**20, rss_growth_bytes=3 * 2**20, xla_peak_bytes=2**19),
        _row("manual:normal", grad_evals=300.0, w1_max=2.0, verdict="fail",
             verdict_reason="w1_max=2 beyond fail threshold 0.5"),
        _row("autonormal", status="failed", error=f"ValueError: {INJECTION}"),
        # stored under verdict policy 1, which failed it on k-hat alone: shown re-judged
        _row("autodiagonalnormal", w1_max=0.034, w1_max_floor=0.025, psis_khat=1.02,
             verdict="fail", verdict_reason="psis_khat=1.02 beyond fail threshold 0.7",
             reference_ok=True, verdict_policy=None),
        _row("autobnaf", status="not_applicable", error=NA_REASON),
        {**_row("nuts"), "model": "ghost_model", "data": "{}", "verdict": "pass"},
    ]
    results = store.ResultsStore(out)
    results.add(rows)
    nuts_draws = {"latent_fairness": rng.beta(13, 9, size=(2, 60))}
    arviz_adapter.save_run(store.artifact_path(out, "coin", "nuts", 0, "hash-nuts"), nuts_draws,
                           {}, nuts={"energy": rng.normal(size=(2, 60)),
                                 "diverging": np.zeros((2, 60), bool),
                                 "num_steps": np.full((2, 60), 3),
                                 "num_steps_warmup": np.full((2, 60), 3)})
    for seed in (0, 1):
        arviz_adapter.save_run(
            store.artifact_path(out, "coin", "manual:beta", seed, "hash-manual:beta"),
            {"latent_fairness": rng.beta(13, 9, size=400)}, {},
            svi={"losses": 15 + 5 * np.exp(-np.arange(300) / 30) + rng.normal(0, .1, 300),
                 "particle_elbos": rng.normal(size=100)})
    store.artifact_path(out, "coin", "manual:normal", 0, "hash-manual:normal").write_bytes(
        b"not a netCDF file")
    refs = out / "references"
    refs.mkdir()
    arviz_adapter.save_posterior(refs / "coin__test.nc",
                                 {"latent_fairness": rng.beta(13, 9, size=5000)}, {})
    (refs / "coin__test.json").write_text(json.dumps({
        "model": "coin", "kind": "exact", "quality": "full", "ok": True, "failed_checks": [],
        "data": COIN_DATA, "checks": {"latent_fairness_mean_z": 0.2}, "draws": 5000,
        "versions": {"arviz": "0.23.4"}, "built_at": "2025-01-01T00:00:00Z"}))
    return out


@pytest.fixture(scope="module")
def report(results_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    index = build_module.build_report(results_dir, out, history_dir=out / "no-history")
    assert index == out / "index.html"
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []
        self.rows: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("href", "src"):
            if attrs.get(key) is not None:
                self.links.append((tag, attrs[key]))
        if tag == "tr" and "data-model" in attrs:
            self.rows.append(attrs["data-model"])


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


def _pages(report: Path) -> list[Path]:
    return sorted(report.rglob("*.html"))


def test_pages_exist_for_every_model_and_method(report):
    assert (report / "index.html").is_file()
    assert (report / "style.css").is_file()
    for name in REGISTRY:
        assert (report / "models" / f"{name}.html").is_file(), name
    assert (report / "models" / "ghost_model.html").is_file()
    for method in ("nuts", "manual-beta", "manual-normal", "autonormal", "autobnaf"):
        assert (report / "methods" / f"{method}.html").is_file(), method


def test_leaderboard_has_a_row_per_model(report):
    rows = _parse(report / "index.html").rows
    for name in REGISTRY:
        assert name in rows, name
    assert "ghost_model" in rows


def test_links_are_relative_and_resolve(report):
    for page in _pages(report):
        for tag, link in _parse(page).links:
            parts = urlsplit(link)
            if link.startswith("data:"):
                continue
            assert not parts.scheme and not parts.netloc, f"{page.name}: absolute link {link}"
            assert not link.startswith("/"), f"{page.name}: root-relative link {link}"
            if not parts.path:  # a fragment on the same page
                continue
            target = (page.parent / unquote(parts.path)).resolve()
            assert target.is_file(), f"{page.relative_to(report)}: {tag} {link} is broken"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_build_that_stops_half_way_leaves_the_old_report_whole(report, results_dir, tmp_path,
                                                                   monkeypatch):
    """The new report is built beside the old one and swapped in when done: a crash after some
    model pages (as kill -9 would leave it) changes nothing, and every link still resolves."""
    old = tmp_path / "report"
    shutil.copytree(report, old)
    before = _files(old)
    written = []

    def crash_on_third(ctx, model, spec):
        if len(written) == 2:
            raise KeyboardInterrupt("killed mid-build")
        written.append(model)
        return write_model_page(ctx, model, spec)

    monkeypatch.setattr(build_module, "write_model_page", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        build_module.build_report(results_dir, old, history_dir=old / "no-history")
    assert written and _files(old) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no half-built folder left
    test_links_are_relative_and_resolve(old)
    monkeypatch.undo()
    # what a build killed by kill -9 leaves (its process gone), and a build still running
    killed = tmp_path / ".report.building-999999999-0a1b2c3d"
    running = tmp_path / f".report.building-{os.getpid()}-0a1b2c3d"
    for folder in (killed, running):
        folder.mkdir()
    assert build_module.build_report(results_dir, old, history_dir=old / "no-history") == (
        old / "index.html")
    test_links_are_relative_and_resolve(old)
    assert not killed.exists() and running.exists()


def test_images_are_png_files_in_the_report(report):
    images = [(page, link) for page in _pages(report) for tag, link in _parse(page).links
              if tag == "img"]
    assert images
    coin = (report / "models" / "coin.html").read_text()
    for name in ("data", "corner", "loss", "trace", "energy"):
        assert f"../img/coin/{name}.png" in coin, name
    for page, link in images:
        target = (page.parent / link).resolve()
        assert target.suffix == ".png" and report.resolve() in target.parents
        assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_escaped_and_reasons_shown(report):
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    for page in _pages(report):
        assert INJECTION not in page.read_text(), page
    index = (report / "index.html").read_text()
    coin = (report / "models" / "coin.html").read_text()
    for text in (index, coin):
        assert escaped in text
        assert NA_REASON in text
    assert "not run" in index  # registered models without rows
    assert "manual:normal" in coin and "unreadable" in coin  # the corrupt artifact is a note


def test_environment_and_history_note(report):
    index = (report / "index.html").read_text()
    for text in ("0.0-test", "smoke", "git commit", "settings hash", "Runtime history"):
        assert text in index, text


def test_history_failure_is_a_note(monkeypatch, tmp_path):
    fake = types.ModuleType("svi_bench.benchmarks.regress.history")

    def broken(history_dir, out_dir):
        raise RuntimeError("boom")

    fake.build_history = broken
    monkeypatch.setitem(sys.modules, "svi_bench.benchmarks.regress.history", fake)
    link, note = build_module._history(tmp_path, tmp_path, lambda m: None)
    assert link == "" and "boom" in note

    def ok(history_dir, out_dir):
        (out_dir / "history.html").write_text("<html></html>")
        return out_dir / "history.html"

    fake.build_history = ok
    assert build_module._history(tmp_path, tmp_path, lambda m: None) == ("history.html", "")
    fake.build_history = lambda h, o: None
    link, note = build_module._history(tmp_path, tmp_path, lambda m: None)
    assert link == "" and "no stored benchmark runs" in note


def _one_line_error(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err


def test_missing_results_folder_exits_2(capsys, tmp_path):
    err = _one_line_error(capsys, ["build", "--results", str(tmp_path / "nope"),
                                   "--out", str(tmp_path / "r")])
    assert "does not exist" in err


def test_folder_without_results_exits_2(capsys, tmp_path):
    err = _one_line_error(capsys, ["build", "--results", str(tmp_path),
                                   "--out", str(tmp_path / "r")])
    assert "results.parquet" in err


def test_corrupt_results_exit_2(capsys, tmp_path):
    (tmp_path / "results.parquet").write_bytes(b"PAR1 this is not parquet")
    err = _one_line_error(capsys, ["build", "--results", str(tmp_path),
                                   "--out", str(tmp_path / "r")])
    assert "corrupt" in err


def test_refuses_to_overwrite_a_folder_that_is_not_a_report(capsys, results_dir, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "keep.py").write_text("# not a report\n")
    err = _one_line_error(capsys, ["build", "--results", str(results_dir), "--out", str(tmp_path)])
    assert "non-empty" in err
    assert (tmp_path / "models" / "keep.py").exists()


def test_unknown_option_exits_2(capsys):
    _one_line_error(capsys, ["build", "--no-such-option"])


def test_command_line_entry_point(tmp_path):
    proc = subprocess.run([str(Path(sys.executable).parent / "svi-bench"), "report", "--results",
                           str(tmp_path / "missing"), "--out", str(tmp_path / "r")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


# --------------------------------------------------------------------------- what a cell shows


class _Cells(HTMLParser):
    """The leaderboard's entries: per model row, every ``div.entry`` with its classes, title and
    whitespace-normalised text (nested elements included)."""

    def __init__(self) -> None:
        super().__init__()
        self.model: str | None = None
        self.column = -1
        self.entries: list[dict] = []
        self._depth = 0  # div depth inside the current entry (0: not in one)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.model, self.column = attrs.get("data-model"), -1
        elif tag == "td" and self.model:
            self.column += 1
        elif tag == "div" and self._depth:
            self._depth += 1
        elif tag == "div" and self.model and "entry" in (attrs.get("class") or "").split():
            self._depth = 1
            self.entries.append({"model": self.model, "column": self.column,
                                 "classes": attrs["class"].split(), "title": attrs.get("title", ""),
                                 "text": ""})

    def handle_endtag(self, tag):
        if tag == "div" and self._depth:
            self._depth -= 1
        elif tag == "tr":
            self.model = None

    def handle_data(self, data):
        if self._depth:
            self.entries[-1]["text"] += " " + data  # one element, one word boundary

    def entry(self, model: str, method: str) -> dict:
        found = [e for e in self.entries if e["model"] == model
                 and e["title"].startswith(f"{model} × {method}:")]
        assert len(found) == 1, (model, method, [e["title"] for e in self.entries])
        e = found[0]
        return {**e, "text": " ".join(e["text"].split())}


@pytest.fixture(scope="module")
def cells(report) -> _Cells:
    parser = _Cells()
    parser.feed((report / "index.html").read_text())
    return parser


def test_a_cells_memory_is_on_its_hover_and_its_method_page(cells, report):
    """What a run needed in memory (the process's peak, what the run added, XLA's buffers) is
    on the leaderboard's hover and in the method page's table; a cell without it says nothing."""
    e = cells.entry("coin", "manual:beta")
    assert ("memory: process peak 600.0 MiB, run added 3.0 MiB, program buffers 0.5 MiB"
            in e["title"]), e["title"]
    assert "memory:" not in cells.entry("coin", "nuts")["title"]
    page = (report / "methods" / "manual_beta.html")
    if not page.exists():
        page = next((report / "methods").glob("manual*beta*.html"))
    assert "process peak 600.0 MiB" in page.read_text()


def test_cell_shows_the_worst_verdict_over_seeds_and_the_speed_ups(cells):
    """manual:beta has a warn seed and a pass seed: the cell is warn (2 of 2 seeds ok, with the
    warning mark). Its headline metric is the median w1_max over the seeds, (0.3 + 0.1) / 2, with
    its floor; the speed-ups over NUTS are wall (2 + 0.5) / (1 + 0.1), run 0.5 / 0.1 and gradient
    evaluations 1000 / 300, and k-hat is the one seed's 0.4."""
    e = cells.entry("coin", "manual:beta")
    assert "verdict-warn" in e["classes"]
    assert e["title"].startswith("coin × manual:beta: warn (1 pass, 1 warn of 2 seeds)")
    assert "w1_max=0.3 beyond warn threshold 0.2" in e["title"]
    assert "warnings: loss shows no plateau" in e["title"]
    assert e["text"] == ("beta warn 2/2 ok ⚠ w1_max 0.2 (floor 0.07) "
                         "2.3× wall · 5× run · 3.3× grads k-hat 0.4"), e["text"]


def test_khat_is_a_badge_beside_the_verdict_and_old_verdicts_are_rejudged(cells, report):
    """The row stored under policy 1 failed on k-hat 1.02 alone with w1_max at its floor: the
    leaderboard shows it re-judged (pass), says so, and shows k-hat as a warning badge whose
    tooltip says it is a diagnostic; manual:beta's k-hat 0.4 is a good one."""
    e = cells.entry("coin", "autodiagonalnormal")
    assert "verdict-pass" in e["classes"], e
    assert "stored under policy 1: fail" in e["title"]
    assert e["text"].endswith("k-hat 1.02"), e["text"]
    index = (report / "index.html").read_text()
    badge = re.search(r'<span class="khat khat-unreliable"\s+title="([^"]*)">k-hat 1.02<', index)
    assert badge and "not part of the verdict" in badge.group(1), badge
    assert 'class="khat khat-good"' in index
    assert ("1 verdict was stored under verdict policy 1 (1: PSIS k-hat judged as a metric) and "
            "is shown re-judged") in index
    assert "1 changed (fail → pass: 1)" in index


def test_cell_of_a_failing_guide_without_floor_and_of_nuts(cells):
    e = cells.entry("coin", "manual:normal")
    assert "verdict-fail" in e["classes"]
    # no floor stored: none shown; the same run time as NUTS, a third of its gradients
    assert e["text"] == "normal fail w1_max 2 1× wall · 1× run · 3.3× grads", e["text"]
    nuts = cells.entry("coin", "nuts")
    assert "verdict-pass" in nuts["classes"]
    assert nuts["text"] == ("pass w1_max 0.12 (floor 0.15) 2.5 s wall · 1,000 grads "
                            "R-hat 1.01 · ESS 300"), nuts["text"]
    assert "speed" not in nuts["text"] and "×" not in nuts["text"]


def test_cells_of_failed_and_not_applicable_runs(cells):
    failed = cells.entry("coin", "autonormal")
    assert "status-failed" in failed["classes"] and failed["text"].startswith("failed [")
    assert "failed: ValueError: " + INJECTION in failed["title"]  # the parser unescapes
    na = cells.entry("coin", "autobnaf")
    assert "status-na" in na["classes"] and na["text"].startswith("n/a [")
    assert NA_REASON in na["title"]
    # a method column without a row for a registered model says so
    missing = cells.entry("gamma_concentration", "nuts")
    assert "status-missing" in missing["classes"] and missing["text"] == "not run"


class _Multiples(HTMLParser):
    """The model page's small multiples: [(method, img src or None)] in page order, and the
    methods listed as having no draws."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: list[list] = []
        self.no_draws: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "figure" and "multiple" in (attrs.get("class") or "").split():
            self.figures.append([attrs["data-method"], None])
        elif tag == "img" and self.figures and self.figures[-1][1] is None:
            self.figures[-1][1] = attrs["src"]
        elif tag == "li" and "data-method" in attrs:
            self.no_draws.append(attrs["data-method"])


def test_model_page_has_a_corner_per_method_with_draws_and_a_note_per_other(report):
    page = report / "models" / "coin.html"
    parsed = _Multiples()
    parsed.feed(page.read_text())
    assert [m for m, _ in parsed.figures] == ["nuts", "manual:beta"]  # leaderboard order
    for _, src in parsed.figures:
        assert src and (page.parent / src).resolve().read_bytes()[:4] == b"\x89PNG"
    # the folder has no manifest: coin's methods are those its rows hold, in the grid's order
    assert parsed.no_draws == ["manual:normal", "autonormal", "autodiagonalnormal", "autobnaf"]
    text = page.read_text()
    assert "corner.png" in text  # the combined corner stays
    assert "failed</span>" in text and NA_REASON in text  # failed and n/a say why, in one line
    assert "no usable draws" in text  # the ok run whose artifact is corrupt


def test_the_leaderboard_says_how_many_timed_runs_were_contended():
    """The index's timing note counts the ok rows flagged ``contended``; rows that could not tell
    (NaN share, or results from before the column) say nothing rather than 'uncontended'."""
    import pandas as pd

    from svi_bench.reports.loader import contention_note

    df = pd.DataFrame({"status": ["ok", "ok", "ok", "failed"],
                       "contended": pd.array([True, False, None, True], dtype="boolean")})
    note = contention_note(df)
    assert note.startswith("Timings: 1 of 2 timed runs were contended"), note
    calm = df.assign(contended=pd.array([False, False, None, True], dtype="boolean"))
    assert contention_note(calm).startswith("Timings: none of the 2 timed runs was contended")
    assert contention_note(df.assign(contended=pd.array([None] * 4, dtype="boolean"))) == ""
    assert contention_note(df.drop(columns="contended")) == ""
