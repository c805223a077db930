"""``python -m benchmarks``: re-executes itself with a fixed PYTHONHASHSEED, then runs the CLI."""

import sys

from benchmarks.inference.jax_setup import ensure_hash_seed

if __name__ == "__main__":
    ensure_hash_seed(sys.argv[1:])
    from benchmarks.cli import main

    sys.exit(main())
