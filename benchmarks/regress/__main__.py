"""``python -m svi_bench.benchmarks.regress``: the regression gate's command line."""

import sys

from svi_bench.benchmarks.regress.cli import main

if __name__ == "__main__":
    sys.exit(main())
