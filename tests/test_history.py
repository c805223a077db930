"""The runtime-history page from synthetic pytest-benchmark runs (one of them corrupt)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the suite is not installed in the venv; import it from the repo
    sys.path.insert(0, str(REPO))

from svi_bench.benchmarks.regress.history import build_history  # noqa: E402

SVI = "test_svi_steps[coin-autonormal]"
NUTS = "test_nuts_draws[coin-nuts]"
ACC = "test_accuracy[coin-manual:beta]"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _bench(name: str, group: str, median: float, **extra) -> dict:
    return {
        "group": group, "name": name, "fullname": f"benchmarks/regress/perf/x.py::{name}",
        "stats": {"min": median * 0.9, "max": median * 1.3, "median": median, "mean": median,
                  "stddev": median * 0.1, "rounds": 12, "iterations": 1},
        "extra_info": extra, "options": {"timer": "process_time"},
    }


def _run(commit: str, day: int, svi_s: float, grad_evals: int = 4608, w1: float = 0.05) -> dict:
    return {
        "machine_info": {"node": "runner", "cpu": {"brand_raw": "Test CPU"}},
        "commit_info": {"id": commit * 40, "time": f"2025-03-{day:02d}T12:00:00+00:00",
                        "branch": "main", "dirty": False},
        "datetime": f"2025-03-{day:02d}T13:00:00+00:00",
        "version": "5.1.0",
        "benchmarks": [
            _bench(SVI, "svi", svi_s, grad_evals=2000, final_loss=14.87),
            _bench(NUTS, "nuts", 0.020, grad_evals=grad_evals, divergences=0),
            _bench(ACC, "accuracy", 2.0, accuracy={"w1_max": w1, "std_mean_err_max": 0.02,
                                                   "sd_log_ratio_max": 0.01},
                   accuracy_floor={"w1_max": 0.02, "std_mean_err_max": 0.015,
                                   "sd_log_ratio_max": 0.013}, verdict="pass"),
        ],
        "svi_bench": {"role": "run"},
    }


def _store(root: Path) -> None:
    machine = root / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    # Written out of order: the page orders commits by commit time, not by file name.
    (machine / "0003_c.json").write_text(json.dumps(_run("c", 3, 0.020, grad_evals=4700)))
    (machine / "0001_a.json").write_text(json.dumps(_run("a", 1, 0.008)))
    (machine / "0002_b.json").write_text(json.dumps(_run("b", 2, 0.0085)))
    (machine / "0004_b.json").write_text(json.dumps(_run("b", 2, 0.0083)))  # a rerun of b
    (machine / "0005_broken.json").write_text('{"benchmarks": [')  # truncated upload
    gate = root / "gate" / "20250304T000000Z"
    gate.mkdir(parents=True)
    (gate / "comparison.json").write_text(json.dumps({"ok": True, "rows": []}))


def test_history_page_from_stored_runs(tmp_path):
    history, out = tmp_path / ".benchmarks", tmp_path / "report"
    _store(history)
    page = build_history(history, out)
    assert page == out / "history.html"
    text = page.read_text()

    images = re.findall(r'<img src="([^"]+)"', text)
    assert images == ["history_svi.png", "history_nuts.png", "history_accuracy.png"]
    for name in images:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC  # written next to the page

    # commits in commit-time order, the rerun of b folded into one commit
    runs = text[text.index("<h2>Runs</h2>"):]
    assert runs.index("aaaaaaaaaa") < runs.index("bbbbbbbbbb") < runs.index("cccccccccc")
    assert "4 stored pytest-benchmark run(s) of 3 commit(s)" in text
    # the corrupt file and the gate's comparison.json are noted, not fatal
    assert "0005_broken.json: skipped, corrupt or unreadable" in text
    assert "comparison.json: skipped, not a pytest-benchmark run" in text
    # the slowdown b -> c (x2.4) is listed where it happened; the changed grad evals too
    steps = text[text.index("<h2>Steps"):text.index("<h2>Changes")]
    row = re.sub(r"\s+", "", steps)
    assert ("<code>test_svi_steps[coin-autonormal]</code></td><td>process_time</td>"
            "<td><code>bbbbbbbbbb</code></td><td><code>cccccccccc</code></td>"
            '<tdclass="numslower">x2.38</td>') in row  # 0.020 s / median(0.0085, 0.0083) s
    assert re.search(r"test_nuts_draws\[coin-nuts\].*?grad_evals.*?4608.*?4700", text, re.S)
    # no network, relative links only
    assert "http://" not in text and "https://" not in text
    assert not re.search(r'(src|href)="/', text)


def test_names_are_escaped(tmp_path):
    history = tmp_path / "h"
    history.mkdir()
    run = _run("d", 4, 0.01)
    run["benchmarks"][0]["name"] = "test_x[<script>alert(1)</script>]"
    (history / "run.json").write_text(json.dumps(run))
    text = build_history(history, tmp_path / "out").read_text()
    assert "<script>" not in text and "&lt;script&gt;" in text


def test_no_runs_gives_none(tmp_path):
    assert build_history(tmp_path / "missing", tmp_path / "out") is None
    empty = tmp_path / "empty"
    empty.mkdir()
    assert build_history(empty, tmp_path / "out") is None
    (empty / "broken.json").write_text("{")
    assert build_history(empty, tmp_path / "out") is None
    assert not (tmp_path / "out" / "history.html").exists()
