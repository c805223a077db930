"""A progress line for long one-off work (a reference build): rewritten in place on a terminal,
a plain line every so often elsewhere (a log file, a pipe), so the work can be watched."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


class ProgressLine:
    """``line(text)`` shows ``text`` as the current progress; ``line.message(text)`` prints a
    message above it; ``line.close()`` ends the line. Off a terminal a progress text is printed
    as its own line at most every ``every`` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 10.0) -> None:
        self.stream = stream or sys.stderr
        self.every = every
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self._shown = 0  # characters of the progress text on the terminal's line
        self._last = -float("inf")

    def __call__(self, text: str) -> None:
        if self.live:
            self.stream.write("\r" + text.ljust(self._shown))
            self._shown = len(text)
        elif (now := time.monotonic()) - self._last >= self.every:
            self.stream.write(text + "\n")
            self._last = now
        self.stream.flush()

    def message(self, text: str) -> None:
        self.close()
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self._shown:
            self.stream.write("\n")
            self.stream.flush()
            self._shown = 0


def throttled(log: Callable[[str], None], every: float = 30.0) -> Callable[[str], None]:
    """``log`` called with a progress text at most every ``every`` seconds, the first after
    ``every`` seconds: a long build is seen, a short one stays quiet."""
    last = time.monotonic()

    def progress(text: str) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last >= every:
            log(text)
            last = now

    return progress
