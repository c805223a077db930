"""Entry points: ``nox -s bench`` (run the grid, build the report), ``nox -s tests``, and more.

Every session fixes PYTHONHASHSEED (NumPyro's ELBO iterates over a Python set, so the traced
program and JAX's persistent-cache key depend on it) and runs JAX on the CPU unless told otherwise.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
ENV = {
    "PYTHONHASHSEED": "0",
    "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"),
    "MPLBACKEND": "Agg",
}
RESULTS = "results"


def _install(session: nox.Session, extras: str = "") -> None:
    session.install("-e", f".{extras}")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Run the grid (default: quick profile, 3 seeds) and regenerate the HTML report.

    Arguments after ``--`` are passed to ``svi-bench run`` and win over the defaults,
    e.g. ``nox -s bench -- --profile smoke --models coin``.
    """
    _install(session)
    out = RESULTS
    args = list(session.posargs)
    if "--out" in args:
        out = args[args.index("--out") + 1]
    session.run(
        "svi-bench", "run", "--profile", "quick", "--seeds", "3", "--out", out,
        *args, env=ENV,
    )
    session.run("svi-bench", "report", "--results", out, "--out", f"{out}/report",
                env=ENV)


STUDIES_OUT = "results-studies"
STUDIES = ("anytime", "particles", "seeds", "scaling", "annealing", "schedules", "diagnostics",
           "warm_start", "live_data", "locked_mode", "document_budgets", "faster_than_mcmc",
           "parameter_recovery", "support_mismatch", "step_size")
#: Studies that read the rows the others wrote (they run nothing): always run last.
READERS = ("diagnostics",)


@nox.session(python=PYTHON)
def studies(session: nox.Session) -> None:
    """Every study (``svi-bench study --list``) at the quick profile, then the report.

    Results go to ``results-studies/`` (not ``results/``: the leaderboard shows the latest
    variant of each run, which a study's variants would replace). Arguments after ``--`` reach
    every ``svi-bench study`` and win over the defaults, e.g. ``nox -s studies -- --resume`` or
    ``-- --profile smoke --out DIR``.
    """
    _install(session)
    args = list(session.posargs)
    out = args[args.index("--out") + 1] if "--out" in args else STUDIES_OUT
    for name in sorted(STUDIES, key=lambda n: n in READERS):
        session.run("svi-bench", "study", name, "--profile", "quick", "--out", out, *args,
                    env=ENV)
    session.run("svi-bench", "report", "--results", out, "--out", f"{out}/report", env=ENV)


@nox.session(python=PYTHON)
def report(session: nox.Session) -> None:
    """Rebuild the HTML report from existing results without running inference."""
    _install(session)
    out = session.posargs[0] if session.posargs else RESULTS
    session.run("svi-bench", "report", "--results", out, "--out", f"{out}/report",
                env=ENV)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """The test suite (unit, contract, end-to-end smoke grid, browser test of the report).

    Tests run on up to 4 pytest-xdist workers (one per core); the tests that share the smoke grid
    or the smoke studies are grouped on one worker each (``tests/conftest.py``), so each runs once.
    """
    _install(session, "[test]")
    session.run("ruff", "check", ".")
    default = ["-q", "--durations=15", "--numprocesses=auto", "--maxprocesses=4",
               "--dist=loadgroup"]
    session.run("pytest", *(session.posargs or default), env=ENV)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The docs site (Sphinx, PyData theme, MyST Markdown) into ``docs/_build/html``; warnings are
    errors. Reference pages are generated from the declarations as they are read.

    ``nox -s docs -- --execute`` first runs the worked examples' code (``docs/examples/``) in a
    scratch folder; other arguments after ``--`` reach ``sphinx-build``.
    """
    _install(session, "[docs]")
    args = list(session.posargs)
    if "--execute" in args:
        args.remove("--execute")
        session.run("python", "docs/_ext/run_examples.py", env=ENV)
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html",
                *args, env=ENV)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff over the whole repository."""
    session.install("ruff")
    session.run("ruff", "check", ".")


@nox.session(python=PYTHON)
def regress(session: nox.Session) -> None:
    """Performance and accuracy regression gate over ``benchmarks/regress/perf`` (pytest-benchmark).

    Default: this working tree (head) against ``HEAD`` (base), interleaved ABBA in 3 alternations
    of separate pytest-benchmark runs; JSON under ``.benchmarks/gate/<time>/`` and head runs
    autosaved under ``.benchmarks/``; fails on a slowdown beyond the measured noise, a changed
    deterministic figure (NUTS gradient evaluations, final loss) or an accuracy drift beyond the
    noise floor. Arguments after ``--`` replace the default command of
    ``python -m svi_bench.benchmarks.regress``, e.g. ``nox -s regress -- gate --base origin/main``,
    ``nox -s regress -- run`` (one run, compared with the previous autosave) or
    ``nox -s regress -- history --out results/report`` (the runtime-history page of
    ``benchmarks/regress/history.py``).
    """
    _install(session, "[test]")
    args = session.posargs or ["gate", "--base", "HEAD"]
    session.run("python", "-m", "svi_bench.benchmarks.regress", *args, env=ENV)
