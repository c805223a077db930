"""The host-load measure behind the ``contended`` column: known answers, then a real busy process."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from svi_bench.benchmarks.inference import host_load
from svi_bench.benchmarks.inference.host_load import CpuSample


def test_the_others_share_is_the_host_busy_time_minus_our_own_per_cpu(monkeypatch):
    monkeypatch.setattr(host_load.os, "cpu_count", lambda: 2)
    before, after = CpuSample(10.0, 3.0, 100.0), CpuSample(12.0, 4.0, 101.0)
    # the host was busy 2 s in 1 s of wall time, 1 s of it ours: others took 1 of 2 CPU-seconds
    assert host_load.others_share(before, after) == pytest.approx(0.5)
    assert host_load.others_share(before, CpuSample(11.0, 4.0, 101.0)) == 0.0  # all ours
    assert host_load.others_share(before, CpuSample(20.0, 3.0, 101.0)) == 1.0  # clipped


def test_unknown_or_too_short_intervals_are_nan_and_contention_unknown():
    s = CpuSample(0.0, 0.0, 0.0)
    assert math.isnan(host_load.others_share(None, s))
    assert math.isnan(host_load.others_share(s, None))
    assert math.isnan(host_load.others_share(s, CpuSample(1.0, 0.0, 0.01)))
    assert host_load.contended(math.nan, 10.0) is None
    assert host_load.contended(host_load.CONTENDED_SHARE + 0.01, 10.0) is True
    assert host_load.contended(host_load.CONTENDED_SHARE - 0.01, 10.0) is False


def test_a_run_too_short_for_the_clock_ticks_is_not_judged(monkeypatch):
    """On 2 CPUs with 10 ms ticks the share of a 0.1 s run moves by 0.2 with four ticks: no
    verdict; a 1 s run resolves it to 0.02 and gets one."""
    monkeypatch.setattr(host_load.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(host_load.os, "sysconf", lambda name: 100)
    assert host_load.resolution(0.1) == pytest.approx(0.2)
    assert host_load.contended(0.9, 0.1) is None
    assert host_load.resolution(1.0) == pytest.approx(0.02)
    assert host_load.contended(0.9, 1.0) is True


@pytest.mark.skipif(host_load.sample() is None, reason="needs /proc/stat (Linux)")
def test_a_busy_process_beside_an_idle_one_is_seen_as_others_load():
    """While this process sleeps, a child spins one CPU: at least most of that CPU's share of
    the host shows up as the others' (more if the machine is busy with anything else too)."""
    spin = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)  # let it start spinning
        before = host_load.sample()
        time.sleep(1.5)
        share = host_load.others_share(before, host_load.sample())
    finally:
        spin.kill()
        spin.wait()
    cpus = host_load.os.cpu_count() or 1
    assert share >= 0.6 / cpus, share
