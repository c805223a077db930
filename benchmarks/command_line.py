"""What every sub-command shares: the one-line usage error, the parser that raises it, and the
parsing of values (comma lists, KEY=VALUE pairs, seeds) and the end-of-run summary."""

from __future__ import annotations

import argparse
import json
from typing import Any

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad input; the message is the one line the user sees."""


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        raise UsageError(f"{self.prog}: {message}")


def csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def name_list(text: str) -> list[str]:
    """An argparse ``type`` for a comma list of names (``--models``, ``--methods``): duplicates
    collapsed (a cell runs once), and a list naming nothing is bad input, since leaving the
    option out already means "all"."""
    names = list(dict.fromkeys(csv(text)))
    if not names:
        raise argparse.ArgumentTypeError(f"{text!r} names nothing; valid: one or more "
                                         "comma-separated names (leave the option out for all)")
    return names


def folder(text: str) -> str:
    """An argparse ``type`` for an output folder: an empty path would write into the current
    directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is no folder; valid: a folder path such as "
                                         "results")
    return text


def typed_value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def pairs(items: list[str], what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{what} {item!r} is not KEY=VALUE")
        out[key.strip()] = typed_value(value.strip())
    return out


MAX_SEED = 2**32 - 1  # jax.random.PRNGKey takes a uint32 seed
MAX_SEED_COUNT = 10_000


def parse_seeds(text: str) -> list[int]:
    try:
        if "," in text:
            seeds = [int(s) for s in csv(text)]
            if not seeds:
                raise UsageError(f"--seeds {text!r} lists no seed; valid: a count N or a comma "
                                 "list of integers like 0,4,7")
        else:
            n = int(text)
            if not 1 <= n <= MAX_SEED_COUNT:
                raise UsageError(f"--seeds must be at least 1 and at most {MAX_SEED_COUNT}, "
                                 f"got {n}")
            seeds = list(range(n))
    except ValueError:
        raise UsageError(f"--seeds takes a count N or a comma list of integers, got {text!r}") from None
    if any(not 0 <= s <= MAX_SEED for s in seeds) or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds must be distinct integers from 0 to {MAX_SEED} (uint32), "
                         f"got {text!r}")
    return seeds


def json_object(key: str, text: Any) -> dict[str, Any]:
    """A --set value that must be a JSON object (``guide_options``)."""
    try:
        value = json.loads(str(text))
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise UsageError(f"--set {key}={text!s} is not a JSON object; valid: e.g. "
                         f"--set {key}='{{\"K\": 8}}'")
    return value


def print_run_summary(failures: list[str], results, counts: dict[str, int], elapsed: float) -> None:
    """The end of a run (``run``, ``study``): failures, kept-back ok rows, the counts."""
    for line in failures:
        print(line)
    for row in results.kept_back:
        print(f"kept the earlier ok row of {row['model']} x {row['method']} seed {row['seed']}: "
              f"the re-run failed: {row['error']}")
    print(
        f"{counts['ok']} ok, {counts['failed']} failed, {counts['not_applicable']} not applicable "
        f"in {elapsed:.0f} s -> {results.out_dir / 'results.parquet'}"
    )
