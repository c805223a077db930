"""What produced the results: library versions and flags from the rows, the machine, the commit."""

from __future__ import annotations

import datetime as dt
import hashlib
import platform
import subprocess
from pathlib import Path

import pandas as pd

from svi_bench.reports.loader import Results

_MACHINE_COLUMNS = ("cpu", "machine", "platform", "host", "hostname")


def _unique(df: pd.DataFrame, col: str) -> list[str]:
    if col not in df.columns:
        return []
    values = [str(v) for v in df[col].dropna().unique() if str(v) != ""]
    return sorted(values)


def cpu_model() -> str:
    """The build machine's CPU from /proc/cpuinfo (Linux) or platform, and its core count."""
    name = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    name = name or platform.processor() or platform.machine() or "unknown"
    import os

    return f"{name} ({os.cpu_count() or '?'} logical cores)"


def git_commit(cwd: Path | None = None) -> str:
    """``git rev-parse --short HEAD`` of the suite's checkout (+ "-dirty"), else "unknown"."""
    cwd = cwd or Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True,
                              text=True, timeout=10)
        if head.returncode != 0 or not head.stdout.strip():
            return "unknown"
        commit = head.stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                                capture_output=True, text=True, timeout=10)
        if status.returncode == 0 and status.stdout.strip():
            commit += " (with uncommitted changes)"
        return commit
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def settings_digest(df: pd.DataFrame) -> str:
    """One hash over every cell's settings hash: equal digests mean equal grids and settings."""
    hashes = _unique(df, "settings_hash")
    if not hashes:
        return "unknown"
    return hashlib.sha256("\n".join(hashes).encode()).hexdigest()[:12]


def _library_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in ("matplotlib", "chainconsumer", "jinja2", "pandas", "numpy"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
        except Exception:  # a broken optional import must not stop the report
            out[name] = "unavailable"
    return out


def describe(results: Results) -> list[tuple[str, str]]:
    """(label, value) pairs for the environment box of the index page."""
    df = results.df
    items: list[tuple[str, str]] = []
    items.append(("profile", results.profile or "unknown"))
    if results.other_profiles:
        items.append(("other profiles in the folder (not shown)",
                      ", ".join(results.other_profiles)))
    started = _unique(df, "started_at")
    if started:
        items.append(("runs started (UTC)", started[0] if len(started) == 1
                      else f"{started[0]} … {started[-1]}"))
    seeds = sorted({int(s) for s in df["seed"].dropna()}) if "seed" in df.columns else []
    items.append(("rows", f"{len(df)} ({df['model'].nunique() if len(df) else 0} models, "
                          f"{df['method'].nunique() if len(df) else 0} methods, "
                          f"seeds {', '.join(map(str, seeds)) or 'none'})"))
    for col, label in (("jax_version", "jax"), ("numpyro_version", "numpyro")):
        values = _unique(df, col)
        items.append((label, ", ".join(values) or "unknown"))
    ref_versions: dict[str, set[str]] = {}
    for ref in results.references:
        for lib, version in (ref.provenance.get("versions") or {}).items():
            ref_versions.setdefault(str(lib), set()).add(str(version))
    for lib in ("arviz", "numpy", "scipy", "python"):
        if lib in ref_versions:
            items.append((f"{lib} (references)", ", ".join(sorted(ref_versions[lib]))))
    flags = _unique(df, "xla_flags")
    items.append(("XLA_FLAGS", ", ".join(flags) if flags else "none recorded"))
    machine = [v for col in _MACHINE_COLUMNS for v in _unique(df, col)]
    if machine:
        items.append(("machine (from the rows)", "; ".join(machine)))
    items.append(("settings hash (all cells)", settings_digest(df)))
    items.append(("git commit (at report build)", git_commit()))
    items.append(("build machine CPU", cpu_model()))
    items.append(("build machine", f"{platform.system()} {platform.release()} "
                                   f"({platform.machine()})"))
    libs = _library_versions()
    items.append(("report libraries", ", ".join(f"{k} {v}" for k, v in libs.items())))
    items.append(("report built (UTC)",
                  dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")))
    return items
