"""The command line: ``svi-bench report --results DIR --out DIR [--history DIR]``.

Bad input (a missing results folder, a corrupt results table) exits 2 with one line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input; the message is the one line the user sees."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="svi-bench report",
                     description="Static HTML report of a results folder.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    build = sub.add_parser("build", prog="svi-bench report",
                           help="build the report folder from existing results")
    build.add_argument("--results", default="results",
                       help="results folder of `svi-bench run` (default ./results)")
    build.add_argument("--out", default="report", help="report folder to write (default ./report)")
    build.add_argument("--history", default=".benchmarks",
                       help="pytest-benchmark storage for the runtime history "
                            "(default .benchmarks)")
    build.add_argument("--profile", default=None,
                       help="profile to report when the results hold several (default: the "
                            "largest of paper, quick, smoke present)")
    build.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        from svi_bench.reports.build import ReportError, build_report

        log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr))
        try:
            index = build_report(Path(args.results), Path(args.out), Path(args.history),
                                 profile=args.profile, log=log)
        except ReportError as exc:
            raise UsageError(str(exc)) from None
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(index)
    return 0
