"""Installed as a user installs it: one namespace (nothing called plain ``models``), one console
command, the shipped references inside the wheel, and no clash with a user's own ``models``."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOP_LEVEL = "svi_bench"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(out), str(REPO)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (path,) = out.glob("svi_bench-*.whl")
    return path


def test_wheel_installs_nothing_but_svi_bench_and_ships_the_references(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {TOP_LEVEL}, f"top-level names other than {TOP_LEVEL}: {tops - {TOP_LEVEL}}"
    shipped = sorted(p.name for p in (REPO / "models" / "references").glob("*.*"))
    packed = sorted(n.rsplit("/", 1)[1] for n in names
                    if n.startswith(f"{TOP_LEVEL}/models/references/"))
    assert shipped and packed == shipped
    assert any(n.endswith("entry_points.txt") for n in names)
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "svi-bench = svi_bench.benchmarks.console:main" in zipfile.ZipFile(wheel).read(entry).decode()


@pytest.mark.slow
def test_a_user_project_with_its_own_models_package(wheel, tmp_path):
    """A fresh venv (dependencies borrowed from this one), the wheel installed, and a project that
    has its own ``models`` package: ``svi-bench list`` works there and a model file imports both."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    site = next((venv / "lib").glob("python*/site-packages"))
    # Dependencies from this environment as a plain path: its .pth files (our editable finder
    # among them) are not processed, so only the wheel provides svi_bench.
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                           "install", "--no-deps", "--no-index", "-q", str(wheel)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "models" / "__init__.py").write_text('OWNER = "the user"\n')
    (project / "my_model.py").write_text(textwrap.dedent("""
        import models
        import svi_bench.models as bench_models
        from svi_bench.models import REGISTRY, ModelSpec

        assert models.OWNER == "the user", models
        assert "coin" in REGISTRY and ModelSpec.__module__ == "svi_bench.models.base"
        print("user models:", models.__file__)
        print("suite models:", bench_models.__file__)
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHASHSEED")}
    env["SVI_BENCH_CACHE"] = str(tmp_path / "cache")
    python = str(venv / "bin" / "python")
    proc = subprocess.run([python, "my_model.py"], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert str(project / "models") in proc.stdout and str(venv) in proc.stdout

    proc = subprocess.run([str(venv / "bin" / "svi-bench"), "list"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "coin" in proc.stdout and "autonormal" in proc.stdout

    found = subprocess.run([python, "-c", "import importlib.util as u; "
                            "print([m for m in ('models', 'benchmarks', 'reports') if u.find_spec(m)])"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == "[]", found.stdout + found.stderr
