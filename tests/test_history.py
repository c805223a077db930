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


# Compile cost: one SVI benchmark's fresh compile per commit, with the fields the perf suite writes.
def _compile_run(commit: str, day: int, compile_s: float | None, cache: str | None = "",
                 share: float | None = 0.05, flops: float | None = 1.0e6, passes: int = 2
                 ) -> dict:
    """A run of ``commit`` whose SVI benchmark compiled its timed program in ``compile_s`` (None:
    a run from before compiles were recorded; ``cache``/``share`` None: not recorded either)."""
    extra: dict = {"grad_evals": 2000, "final_loss": 14.87}
    if compile_s is not None:
        extra.update(compile_s=compile_s, compile_init_s=0.3, cache_init="executable",
                     compile_init_others_share=0.0)
        if cache is not None:
            extra["cache"] = cache
        if share is not None:
            extra["compile_others_share"] = share
    if flops is not None:
        extra.update(xla_flops=flops, xla_bytes_accessed=4.0e5)
    run = _run(commit, day, 0.008)
    run["benchmarks"] = [  # the suite's passes share one program: one compile per run
        _bench(SVI.replace("]", f"-pass{k}]"), "svi", 0.008, **extra) for k in range(1, passes + 1)]
    return run


def _store_compiles(root: Path) -> None:
    runs = {
        "o1": _compile_run("o", 1, None, flops=None),  # before any compile figure was recorded
        "o2": _compile_run("p", 2, 0.5, cache=None, share=None),  # compile_s without its cache
        "a": _compile_run("a", 3, 2.0),
        "b1": _compile_run("b", 4, 2.1),
        "b2": _compile_run("b", 4, 0.05, cache="executable"),  # loaded: says nothing
        "b3": _compile_run("b", 4, 0.04, cache="jax"),  # JAX's cache served it: nor this
        "c": _compile_run("c", 5, 4.2, flops=1.5e6),  # the doubled compile, and more work
        "d1": _compile_run("d", 6, 9.0, share=0.6),  # under load, next to a quiet one
        "d2": _compile_run("d", 6, 4.3),
        "e": _compile_run("e", 7, 8.8, share=0.6),  # only under load
    }
    root.mkdir()
    for name, run in runs.items():
        (root / f"{name}.json").write_text(json.dumps(run))


def _rows(html: str, heading: str) -> str:
    start = html.index(heading)
    return re.sub(r"\s+", "", html[start:html.index("<h2>", start + 1)])


def test_compile_history_steps_and_load(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved: dict[str, Figure] = {}
    real_savefig = Figure.savefig

    def keep(fig, path, *args, **kwargs):
        saved[Path(path).name] = fig
        return real_savefig(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", keep)
    history, out = tmp_path / "h", tmp_path / "out"
    _store_compiles(history)
    text = build_history(history, out).read_text()

    images = re.findall(r'<img src="([^"]+)"', text)
    assert images == ["history_svi.png", "history_svi_compile.png", "history_svi_xla.png"]
    for name in images:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC

    # the doubled fresh compile b -> c is a step; b's cached compiles are not in its median
    # (with them it would be 0.05 s: steps a -> b x0.02 and b -> c x84)
    steps = _rows(text, "<h2>Compile-time steps")
    assert ("<td><code>test_svi_steps[coin-autonormal]</code></td><td>timed</td>"
            "<td><code>bbbbbbbbbb</code></td><td><code>cccccccccc</code></td>"
            '<tdclass="numslower">x2.00</td><td></td>') in steps
    # d's compile under load is left out (its quiet run gives 4.3 s: no step c -> d); e compiled
    # only under load, so its step is flagged with it
    assert ("<td><code>dddddddddd</code></td><td><code>eeeeeeeeee</code></td>"
            '<tdclass="numslower">x2.05</td><td><code>eeeeeeeeee</code></td>') in steps
    assert steps.count("<tr>") == 3  # header + the two steps: none from the old runs or caches
    assert "init" not in steps  # the init programs all came from the executable cache
    # 6 fresh compiles (a, b, c, d twice, e), once per run, not per pass; b's 2 cached compiles
    # and the 9 cached init programs apart, as is p's compile that did not record its cache
    assert "6freshcompile(s)of1program(s)plotted;11servedbyacacheand1" in steps
    # the changed XLA work is a step of an exact figure
    assert re.search(r"test_svi_steps\[coin-autonormal\].*?xla_flops.*?1000000.*?1500000", text,
                     re.S)

    # the plot: c's point filled, e's hollow (compiled under load only)
    ax = saved["history_svi_compile.png"].axes[0]
    marks = [(x, line.get_markerfacecolor()) for line in ax.lines
             if line.get_marker() == "o" for x in line.get_xdata()]
    index = {label: i for i, label in enumerate(t.get_text() for t in ax.get_xticklabels())}
    c = next(i for label, i in index.items() if label.startswith("ccccccc"))
    e = next(i for label, i in index.items() if label.startswith("eeeeeee"))
    assert [f for x, f in marks if x == e] == ["none"]
    assert len([f for x, f in marks if x == c]) == 1 and [f for x, f in marks if x == c] != ["none"]
    assert "<b>hollow</b>" in text and "20% of the host" in text


def test_compile_history_of_old_runs_only(tmp_path):
    """Runs from before compile costs were recorded: the page is built, without compile plots."""
    history = tmp_path / "h"
    history.mkdir()
    (history / "old.json").write_text(json.dumps(_compile_run("o", 1, None, flops=None)))
    (history / "older.json").write_text(json.dumps(_run("q", 2, 0.01)))
    text = build_history(history, tmp_path / "out").read_text()
    assert re.findall(r'<img src="([^"]+)"', text) == [
        "history_svi.png", "history_nuts.png", "history_accuracy.png"]
    assert re.search(r"0 fresh compile\(s\) of 0 program\(s\)\s+plotted", text)
