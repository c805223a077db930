"""Each method's times against NUTS from a study's rows, paired by seed, with their spread.

A row's ``run_s`` is its program's run time over the seeds in it (``seeds_in_program``): seeds
that shared a program have equal shares, one measurement between them, so a spread over seeds
exists only where each seed ran as its own program (``Study.seed_programs``). A row's
``compile_s`` is its program's: a compile when ``cache`` is empty, a load from a cache otherwise
(a second seed's program is the first one's executable). What a method pays once is its cold
compile (median over its rows that compiled); its wall time for one seed is that plus the seed's
run. A ratio is NUTS's time over the method's for the same seed (above 1: faster than NUTS),
mean and standard error over the seeds both have.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies import stats


def _num(rows: pd.DataFrame, column: str) -> pd.Series:
    if column not in rows.columns:
        return pd.Series(math.nan, index=rows.index, dtype=float)
    return pd.to_numeric(rows[column], errors="coerce").astype(float)


def _compiled(rows: pd.DataFrame) -> pd.Series:
    """Rows whose program was compiled, not loaded from a cache (``cache`` empty)."""
    if "cache" not in rows.columns:
        return pd.Series(True, index=rows.index)
    return rows["cache"].map(lambda v: not isinstance(v, str) or v == "")


def compile_cost(rows: pd.DataFrame) -> tuple[float, bool]:
    """(seconds, cold): the median compile of the ok rows that compiled, or, when every program
    came from a cache, the median load (cold False: not what a first run pays)."""
    ok = rows[rows["status"] == "ok"] if len(rows) else rows
    compiled = ok[_compiled(ok)]
    if len(compiled):
        return stats.median(compiled, "compile_s"), True
    return stats.median(ok, "compile_s"), False


def seed_times(rows: pd.DataFrame) -> pd.DataFrame:
    """Per seed of the ok rows: ``run_s``, ``wall_s`` (the method's cold compile plus the seed's
    run) and ``shared`` (the seed shared its program with others: its run is a share)."""
    ok = rows[rows["status"] == "ok"] if len(rows) else rows
    compile_s, _ = compile_cost(rows)
    run = _num(ok, "run_s")
    return pd.DataFrame({
        "seed": pd.to_numeric(ok.get("seed", pd.Series(dtype=float)), errors="coerce"),
        "run_s": run,
        "wall_s": compile_s + run,
        "shared": _num(ok, "seeds_in_program").fillna(1) > 1,
    }).dropna(subset=["seed"]).drop_duplicates("seed").set_index("seed")


def paired_ratio(base: pd.DataFrame, other: pd.DataFrame, column: str
                 ) -> tuple[float, float, int]:
    """(mean, se, seeds) of base[column] / other[column] over the seeds both have; se nan when
    a seed shared its program (its time is a share, not a measurement) or below two seeds."""
    both = base[[column, "shared"]].join(other[[column, "shared"]], lsuffix="_b", rsuffix="_o",
                                         how="inner")
    ratio = (both[f"{column}_b"] / both[f"{column}_o"]).replace([np.inf, -np.inf], np.nan)
    ratio = ratio.dropna()
    mean, se = stats.mean_se(ratio)
    if (both["shared_b"] | both["shared_o"]).any():
        se = math.nan
    return mean, se, int(len(ratio))


def versus_nuts(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method: its cold compile (``compile_cold``: whether one was measured), median
    run and wall time per seed, and NUTS's time over its (``speedup_run``, compile excluded;
    ``speedup_wall``, compile included) with standard error and seeds, and the median share of
    the host other processes used while it ran (``others_share``)."""
    if rows.empty:
        return pd.DataFrame()
    times = {m: seed_times(sub) for m, sub in rows.groupby("method", sort=True)}
    nuts = times.get(NUTS)
    out = []
    for method, sub in rows.groupby("method", sort=True):
        compile_s, cold = compile_cost(sub)
        mine = times[method]
        entry = {"method": method, "compile_once_s": compile_s, "compile_cold": cold,
                 "run_once_s": float(mine["run_s"].median()) if len(mine) else math.nan,
                 "wall_once_s": float(mine["wall_s"].median()) if len(mine) else math.nan,
                 "timed_apart": bool(len(mine)) and not bool(mine["shared"].any()),
                 "others_share": stats.median(sub[sub["status"] == "ok"], "host_others_share")}
        for column, name in (("run_s", "speedup_run"), ("wall_s", "speedup_wall")):
            mean, se, n = paired_ratio(nuts, mine, column) if nuts is not None else (
                math.nan, math.nan, 0)
            entry.update({name: mean, f"{name}_se": se, f"{name}_n": n})
        out.append(entry)
    return pd.DataFrame(out)


def interval(mean: float, se: float, n: int) -> tuple[float, float]:
    """The 95% interval mean ± t(n - 1) se (``stats.t_multiplier``); (nan, nan) without noise."""
    t = stats.t_multiplier(n - 1)
    if not (np.isfinite(mean) and np.isfinite(se) and np.isfinite(t)):
        return math.nan, math.nan
    return mean - t * se, mean + t * se


def ratio_text(mean: float, se: float, n: int) -> str:
    """"2.4 ± 0.1x (95% 2.1 to 2.7, 5 seeds)" or, timed once, "2.4x (one timing, no spread)"."""
    if not np.isfinite(mean):
        return "n/a"
    lo, hi = interval(mean, se, n)
    if not np.isfinite(lo):
        return f"{stats.fmt(mean, 3)}x (one timing, no spread over seeds)"
    return (f"{stats.fmt(mean, 3)} ± {stats.fmt(se, 2)}x (95% {stats.fmt(lo, 3)} to "
            f"{stats.fmt(hi, 3)}, {n} seeds)")


def row_ratio(row, name: str) -> str:
    """``ratio_text`` of a ``versus_nuts`` row's ratio ``name`` (speedup_run, speedup_wall)."""
    return ratio_text(row[name], row[f"{name}_se"], int(row[f"{name}_n"]))


def caveats(derived: pd.DataFrame) -> str:
    """What every timing answer ends with: an untrusted reference, a shared machine (other
    processes above a tenth of the host's CPU during the runs), runs that did not finish."""
    text = ""
    if not derived.loc[derived["verdict"] != "", "reference_ok"].all():
        text += " The reference failed its gates: its verdicts are not trusted."
    busy = derived["others_share"].max()
    if np.isfinite(busy) and busy > 0.1:
        text += (f" Other processes used up to {stats.fmt(busy, 2)} of the host's CPU during "
                 "these runs: the times are of a shared machine.")
    return text + stats.unfinished(derived) + stats.coverage_note(derived)
