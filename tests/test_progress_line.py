"""The progress line of a long build (``benchmarks.progress_line``)."""

from __future__ import annotations

import io

from svi_bench.benchmarks import progress_line
from svi_bench.benchmarks.progress_line import ProgressLine, throttled


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_rewritten_in_place_and_messages_go_above_it():
    out = _Terminal()
    line = ProgressLine(out)
    first = "warm-up 250/2000, about 40 s left"
    line(first)
    line("draws 250/5000")
    line.message("m: thinning by 2")
    line.close()
    assert out.getvalue() == (f"\r{first}\r{'draws 250/5000'.ljust(len(first))}"
                              "\nm: thinning by 2\n")


def test_off_a_terminal_a_line_every_so_often(monkeypatch):
    clock = iter([0.0, 1.0, 11.0])
    monkeypatch.setattr(progress_line.time, "monotonic", lambda: next(clock))
    out = io.StringIO()
    line = ProgressLine(out, every=10.0)
    for text in ("a", "b", "c"):
        line(text)
    assert out.getvalue() == "a\nc\n"


def test_throttled_stays_quiet_for_a_short_build(monkeypatch):
    clock = iter([0.0, 5.0, 31.0, 31.0, 40.0])
    monkeypatch.setattr(progress_line.time, "monotonic", lambda: next(clock))
    logs: list[str] = []
    progress = throttled(logs.append, every=30.0)
    for text in ("a", "b", "c"):
        progress(text)
    assert logs == ["b"]
