"""The report reads method facts from the results folder's ``manifest.json`` (``reports.manifest``),
never from the engine's method code: the reader on a good, a missing and a damaged manifest, and a
report of a folder whose manifest names a method the code does not know."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest

from svi_bench.benchmarks.grid import store
from svi_bench.benchmarks.scoring import arviz_adapter
from svi_bench.benchmarks.scoring.verdict import VERDICT_POLICY
from svi_bench.reports import manifest as mf
from svi_bench.reports.build import build_report
from svi_bench.reports.manifest import Manifest, read_manifest
from tests.test_report import _Cells

REPO = Path(__file__).resolve().parents[1]
COIN_DATA = {"heads": 12, "seed": 0, "tails": 8}
PATHFINDER = "Pathfinder: quasi-Newton paths to a Gaussian approximation (test description)."
GONE = "A user model whose file is gone (test description)."


def _manifest(baseline: str = "nuts") -> dict:
    def method(family: str, order: int, column: str, description: str, name: str) -> dict:
        return {"family": family, "description": description, "order": order,
                "baseline": name == baseline, "column": column,
                "origin": {"kind": "builtin", "module": f"test.{name}"}}

    return {
        "format": 1,
        "methods": {
            "nuts": method("mcmc", 0, "nuts", "NumPyro's No-U-Turn Sampler (test).", "nuts"),
            "manual:beta": method("vi", 100, "manual", "Hand-written guide 'beta' (test).",
                                  "manual:beta"),
            "autonormal": method("vi", 200, "autonormal", "AutoNormal (test).", "autonormal"),
            "pathfinder": {**method("vi", 300, "pathfinder", PATHFINDER, "pathfinder"),
                           "budget": "maxiter",
                           "defaults": [["smoke", {"num_draws": 400, "maxiter": 30}],
                                        ["quick", {"num_draws": 4000, "maxiter": 200}]]},
        },
        "models": {
            "coin": {"description": "coin (test)", "source": "doc", "reference_kind": "exact",
                     "notes": "", "methods": ["nuts", "manual:beta", "autonormal", "pathfinder"],
                     "origin": {"kind": "builtin", "module": "svi_bench.models.coin"}},
            "gone_model": {"description": GONE, "source": "a deleted file",
                           "reference_kind": "nuts", "notes": "kept by the manifest",
                           "methods": ["nuts"], "origin": {"kind": "file", "path": "gone.py"}},
        },
        "cells": [{"model": "coin", "method": "nuts", "profile": "smoke",
                   "settings_hash": "hash-nuts", "seeds": [0]}],
    }


# --- the reader ---------------------------------------------------------------------------------


def test_reads_a_good_manifest(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest()))
    m, notes = read_manifest(tmp_path)
    assert notes == []
    assert m.baseline() == "nuts"
    assert m.method_order(["pathfinder", "autonormal", "zeta", "nuts", "manual:beta"]) == [
        "nuts", "manual:beta", "autonormal", "pathfinder", "zeta"]  # unrecorded last
    assert m.column_of("manual:beta") == "manual" and m.column_of("pathfinder") == "pathfinder"
    assert m.column_of("manual:other") == "manual"  # unrecorded hand-written guides group too
    assert m.description("pathfinder") == PATHFINDER
    assert m.description("zeta") == mf.UNRECORDED
    assert m.family("nuts") == "mcmc" and m.family("zeta") == ""
    assert m.expected_methods("coin") == ["nuts", "manual:beta", "autonormal", "pathfinder"]
    assert m.expected_methods("not_recorded") == []
    assert m.models["gone_model"].description == GONE
    assert m.cells == (mf.Cell("coin", "nuts", "smoke", "hash-nuts", (0,)),)


def test_the_baseline_is_whichever_the_manifest_marks(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps(_manifest(baseline="pathfinder")))
    m, _ = read_manifest(tmp_path)
    assert m.baseline(["nuts", "pathfinder"]) == "pathfinder"
    data = _manifest(baseline="none of them")
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    assert read_manifest(tmp_path)[0].baseline(["nuts"]) is None  # recorded, not marked


def test_a_folder_without_a_manifest_falls_back(tmp_path):
    """Results written before manifests: no note, every method unrecorded, the legacy baseline
    when a row has it, hand-written guides grouped and sorted, the rest in the table's order."""
    m, notes = read_manifest(tmp_path)
    assert notes == [] and m == Manifest()
    assert m.baseline(["autonormal", mf.LEGACY_BASELINE]) == mf.LEGACY_BASELINE
    assert m.baseline(["autonormal"]) is None
    assert m.method_order(["autonormal", "manual:z", "automvn", "nuts", "manual:a"]) == [
        "nuts", "manual:a", "manual:z", "autonormal", "automvn"]
    assert (m.column_of("manual:a"), m.column_of("autonormal")) == ("manual", "autonormal")
    assert m.description("nuts") == mf.UNRECORDED and m.expected_methods("coin") == []


@pytest.mark.parametrize("text,why", [
    ("{not json", "JSONDecodeError"),
    ("[1, 2]", "the file is not an object"),
    (json.dumps({**_manifest(), "format": 2}), "format 2"),
    (json.dumps({**_manifest(), "methods": ["nuts"]}), "methods is not an object"),
    (json.dumps({**_manifest(), "methods": {"nuts": {"order": "first"}}}), "order is not a number"),
    (json.dumps({**_manifest(), "methods": {"nuts": {"baseline": "yes"}}}), "baseline is not"),
    (json.dumps({**_manifest(), "methods": {"nuts": {"defaults": {"smoke": {}}}}}),
     "defaults is not a list of [profile, settings] pairs"),
    (json.dumps({**_manifest(), "methods": {"a": {"baseline": True}, "b": {"baseline": True}}}),
     "several baselines"),
    (json.dumps({**_manifest(), "models": {"coin": {"methods": "nuts"}}}), "methods is not a list"),
    (json.dumps({**_manifest(), "cells": [{"seeds": ["0"]}]}), "seeds is not a list of integers"),
])
def test_a_corrupt_manifest_is_a_note_and_falls_back(tmp_path, text, why):
    (tmp_path / "manifest.json").write_text(text)
    m, notes = read_manifest(tmp_path)
    assert m == Manifest()
    assert len(notes) == 1 and notes[0].startswith("manifest.json is unreadable") and why in notes[0]


# --- the report ---------------------------------------------------------------------------------


def _row(method: str, **extra) -> dict:
    row = {"model": "coin", "method": method, "seed": 0, "profile": "smoke",
           "settings_hash": f"hash-{method}", "settings": "{}", "data": json.dumps(COIN_DATA),
           "status": "ok", "error": "", "warning": "", "started_at": "2025-01-01T00:00:00+00:00",
           "jax_version": "0.0-test", "numpyro_version": "0.0-test", "xla_flags": "",
           "seeds_in_program": 1, "latent_dim": 1, "compile_s": 2.0, "run_s": 0.5,
           "program_run_s": 0.5, "grad_evals": 1000.0, "num_draws": 400,
           "verdict_policy": VERDICT_POLICY, "verdict": "pass", "verdict_reason": "ok",
           "w1_max": 0.1, "w1_max_floor": 0.1}
    row.update(extra)
    return row


def _results(folder: Path, manifest_text: str | None) -> Path:
    """coin with an ok NUTS run and an ok run of "pathfinder", a method no code declares."""
    rng = np.random.default_rng(0)
    store.ResultsStore(folder).add([
        _row("nuts", divergences=0, max_rhat=1.01, min_ess_bulk=300.0),
        _row("pathfinder", compile_s=1.0, run_s=0.1, grad_evals=200.0)])
    arviz_adapter.save_run(store.artifact_path(folder, "coin", "nuts", 0, "hash-nuts"),
                           {"latent_fairness": rng.beta(13, 9, size=(2, 60))}, {},
                           nuts={"energy": rng.normal(size=(2, 60)),
                                 "diverging": np.zeros((2, 60), bool)})
    arviz_adapter.save_run(store.artifact_path(folder, "coin", "pathfinder", 0, "hash-pathfinder"),
                           {"latent_fairness": rng.beta(13, 9, size=400)}, {})
    if manifest_text is not None:
        (folder / "manifest.json").write_text(manifest_text)
    return folder


def _cell(index: str, model: str, method: str) -> str:
    """The whitespace-normalised text of one leaderboard entry."""
    cells = _Cells()
    cells.feed(index)
    return cells.entry(model, method)["text"]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    folder = _results(tmp_path_factory.mktemp("results"), json.dumps(_manifest()))
    out = tmp_path_factory.mktemp("report")
    build_report(folder, out, history_dir=out / "no-history")
    return out


def test_a_method_unknown_to_the_code_gets_its_manifest_description(report):
    page = (report / "methods" / "pathfinder.html").read_text()
    assert PATHFINDER in page
    # its budget per profile, as the manifest records it, the budget field first
    assert "<strong>smoke</strong>: maxiter=30, num_draws=400" in page
    assert "<strong>quick</strong>: maxiter=200, num_draws=4000" in page
    index = (report / "index.html").read_text()
    assert '<a href="methods/pathfinder.html">pathfinder</a>' in index  # its own column
    assert _cell(index, "coin", "pathfinder") == (  # speed-ups over the marked baseline, NUTS
        "pass w1_max 0.1 (floor 0.1) 2.3× wall · 5× run · 5× grads")
    nuts = _cell(index, "coin", "nuts")
    assert "s wall" in nuts and "R-hat 1.01" in nuts and "×" not in nuts
    assert "coin × autonormal: not run" in index  # offered by the manifest, no row


def test_a_model_whose_code_is_gone_shows_the_manifest_text(report):
    page = (report / "models" / "gone_model.html").read_text()
    assert GONE in page and "a deleted file" in page and "kept by the manifest" in page
    assert "its data cannot be drawn" in page


def test_the_baseline_is_not_a_name(tmp_path):
    """Marked as the baseline, pathfinder shows its own cost and NUTS a speed-up over it (with
    its R-hat: its family is mcmc)."""
    folder = _results(tmp_path / "results", json.dumps(_manifest(baseline="pathfinder")))
    build_report(folder, tmp_path / "report", history_dir=tmp_path / "no-history")
    index = (tmp_path / "report" / "index.html").read_text()
    assert _cell(index, "coin", "pathfinder") == "pass w1_max 0.1 (floor 0.1) 1.1 s wall · 200 grads"
    assert _cell(index, "coin", "nuts") == ("pass w1_max 0.1 (floor 0.1) 0.44× wall · 0.2× run · "
                                            "0.2× grads R-hat 1.01 · ESS 300")


def test_a_corrupt_manifest_does_not_stop_the_report(tmp_path):
    folder = _results(tmp_path / "results", "{not json")
    build_report(folder, tmp_path / "report", history_dir=tmp_path / "no-history")
    index = (tmp_path / "report" / "index.html").read_text()
    assert "manifest.json is unreadable" in index
    assert mf.UNRECORDED.replace("'", "&#39;") in (
        tmp_path / "report" / "methods" / "pathfinder.html").read_text()
    assert "×" not in _cell(index, "coin", "nuts")  # the legacy baseline still applies


# --- the layering ---------------------------------------------------------------------------------

FORBIDDEN = ("svi_bench.benchmarks.inference.methods", "svi_bench.benchmarks.methods")


def _imported(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return names


@pytest.mark.parametrize("path", sorted((REPO / "reports").rglob("*.py")),
                         ids=lambda p: p.name)
def test_reports_never_import_the_method_code(path):
    tree = ast.parse(path.read_text())
    bad = [n for n in _imported(tree) if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert not bad, f"{path.name} imports {bad}: read method facts from reports.manifest"
    if path.name != "manifest.py":  # LEGACY_BASELINE is the one place a method is named
        names = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
                 and isinstance(n.value, str) and n.value == mf.LEGACY_BASELINE]
        assert not names, f"{path.name} names the {mf.LEGACY_BASELINE!r} method"
