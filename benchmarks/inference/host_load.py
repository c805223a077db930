"""How busy the rest of the host was while a timed run ran: the share of the host's CPU that
other processes used, so a row can say its timing was contended.

The timing lock (``host_lock``) keeps the suite's own workers out of a timed run; it cannot keep
out anything else on the machine (a test suite, a second grid, a browser). The host's busy CPU
time over the run (``/proc/stat``) minus this process's own CPU time (every thread, XLA's
included) is what the others took; divided by the run's wall time and the host's CPU count it is
a share of the machine. Linux only: elsewhere it is NaN and ``contended`` is unknown.
"""

from __future__ import annotations

import math
import os
import time
from typing import NamedTuple

CONTENDED_SHARE = 0.2
"""A timed run is ``contended`` when other processes used more than this share of the host's
CPU meanwhile: on 2 cores, 0.2 is 0.4 of a core, well above an idle desktop's background and
below one busy process (0.5 of the host)."""

_STAT = "/proc/stat"


class CpuSample(NamedTuple):
    """A moment's counters: the host's busy CPU seconds, this process's CPU seconds, the clock."""

    host_busy_s: float
    own_s: float
    wall_s: float


def sample() -> CpuSample | None:
    """The counters now, or None where ``/proc/stat`` cannot be read (not Linux)."""
    try:
        with open(_STAT, encoding="ascii") as f:
            fields = f.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    busy = sum(ticks) - ticks[3] - ticks[4]
    own = os.times()
    return CpuSample(busy / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.perf_counter())


def others_share(before: CpuSample | None, after: CpuSample | None) -> float:
    """Share (0-1) of the host's CPU that other processes used between two samples; NaN if
    either is missing or the interval is too short to tell (under 50 ms: a few clock ticks)."""
    if before is None or after is None:
        return math.nan
    wall = after.wall_s - before.wall_s
    if wall < 0.05:
        return math.nan
    others = (after.host_busy_s - before.host_busy_s) - (after.own_s - before.own_s)
    return min(1.0, max(0.0, others / (wall * (os.cpu_count() or 1))))


def resolution(run_s: float) -> float:
    """The share's uncertainty for a run of ``run_s`` seconds: both counters tick in clock ticks
    (10 ms on Linux), so up to two ticks each, over the run's CPU capacity (wall x CPUs)."""
    tick = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
    return 4 * tick / (max(run_s, 1e-9) * (os.cpu_count() or 1))


def contended(share: float, run_s: float) -> bool | None:
    """Whether a timed run of ``run_s`` seconds with this ``others_share`` was contended; None
    (unknown) when the share is NaN or its ``resolution`` exceeds half of ``CONTENDED_SHARE``
    (on 2 CPUs: runs under 0.2 s, whose share a few clock ticks move by 0.1 or more)."""
    if math.isnan(share) or resolution(run_s) > CONTENDED_SHARE / 2:
        return None
    return share > CONTENDED_SHARE
