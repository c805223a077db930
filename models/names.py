"""The one rule for every name the suite turns into a file name: model names, manual guide names
(``manual:<guide>``) and method names all name artifacts under ``runs/``, references and report
pages, so a name the file system refuses would fail only at the first write, after the run."""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 100
NAME_RULE = (f"letters, digits, '_', '-', '.' or ':', starting with a letter, digit or '_', at "
             f"most {MAX_NAME_LENGTH} characters")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]*")


def is_file_name(name: object) -> bool:
    """``name`` follows ``NAME_RULE``."""
    return isinstance(name, str) and len(name) <= MAX_NAME_LENGTH and bool(_NAME.fullmatch(name))


def shown(name: object) -> str:
    """``repr(name)``, shortened for a one-line message."""
    text = repr(name)
    return text if len(text) <= 60 else f"{text[:40]}... ({len(text) - 2} characters)"


def name_problem(name: object, what: str) -> str | None:
    """Why ``name`` cannot name a ``what`` (e.g. "method name"), with the rule; None if it can."""
    return None if is_file_name(name) else f"{what} {shown(name)} must be {NAME_RULE}"


__all__ = ["MAX_NAME_LENGTH", "NAME_RULE", "is_file_name", "name_problem", "shown"]
