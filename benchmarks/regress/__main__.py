"""``python -m benchmarks.regress``: the regression gate's command line."""

import sys

from benchmarks.regress.cli import main

if __name__ == "__main__":
    sys.exit(main())
