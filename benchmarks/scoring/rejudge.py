"""Verdicts under the current policy for rows stored under an older one.

A row's verdict is computed when it is scored and stored with the policy it was judged under
(``verdict_policy``; rows without the column predate it: policy 1, which judged PSIS k-hat as a
metric). Readers that compare or show verdicts (the report, the ``diagnostics`` study) call
``current_verdicts``: every ok row judged under an older policy is re-judged from its stored
metrics and noise floors (``evaluate.judge_row``, the function that judges new rows), so an old
results folder never shows a k-hat-based verdict as if it were current. A row with nothing to
re-judge (no reference) keeps its verdict, which no policy change affects. The verdict as stored
stays in ``stored_verdict``; the table on disk is never rewritten.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from svi_bench.benchmarks.scoring.evaluate import NO_REFERENCE, REFERENCE_FAILED, judge_row
from svi_bench.benchmarks.scoring.verdict import LEVELS, POLICY_SUMMARY, VERDICT_POLICY, Judgement

#: The policy of a row stored without a ``verdict_policy`` column (before policies were recorded).
FIRST_POLICY = 1


@dataclass
class Rejudged:
    """What ``current_verdicts`` did: rows re-judged, from which policies, and the changes."""

    n_rejudged: int = 0
    policies: list[int] = field(default_factory=list)
    changes: Counter = field(default_factory=Counter)  # (old, new) -> rows, old != new

    @property
    def n_changed(self) -> int:
        return sum(self.changes.values())

    @property
    def note(self) -> str:
        """One sentence for the report ("" when every verdict was stored under this policy)."""
        if not self.n_rejudged:
            return ""
        olds = ", ".join(str(p) for p in self.policies)
        n = self.n_rejudged
        was = "; ".join(f"{p}: {POLICY_SUMMARY.get(p, 'an older policy')}"
                        for p in self.policies)
        text = (f"{n} verdict{'s were' if n != 1 else ' was'} stored under verdict policy {olds} "
                f"({was}) and {'are' if n != 1 else 'is'} shown re-judged under "
                f"policy {VERDICT_POLICY} ({POLICY_SUMMARY[VERDICT_POLICY]}) from their stored "
                "metrics and noise floors (what an older row lacks, such as the joint metrics "
                "max_sliced_w1 and c2st_acc, is not judged)")
        if self.changes:
            moves = ", ".join(f"{old} → {new}: {n}" for (old, new), n in sorted(
                self.changes.items(), key=lambda kv: (-kv[1], kv[0])))
            text += f"; {self.n_changed} changed ({moves})"
        else:
            text += "; none changed"
        return text + ". results.csv holds the verdicts as stored."


def row_policy(value: Any) -> int:
    """The policy of a stored ``verdict_policy`` value (missing: ``FIRST_POLICY``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return FIRST_POLICY
    return FIRST_POLICY if math.isnan(number) else int(number)


def _present(value: Any) -> bool:
    if value is None or value is pd.NA:
        return False
    return not (isinstance(value, float) and math.isnan(value))


def reference_failure(reason: str) -> str | None:
    """The reference failure a stored reason starts with ("... (5 divergences); ..."), or None."""
    head = f"{REFERENCE_FAILED} ("
    if not reason.startswith(head):
        return None
    depth = 1
    for i in range(len(head), len(reason)):
        depth += {"(": 1, ")": -1}.get(reason[i], 0)
        if depth == 0:
            return reason[len(head):i]
    return None


def rejudge_row(row: dict[str, Any]) -> Judgement:
    """The verdicts of a stored ok row under the current policy, from the metrics it has."""
    reason = str(row["verdict_reason"]) if _present(row.get("verdict_reason")) else ""
    if reason.startswith(NO_REFERENCE):
        return Judgement(str(row["verdict"]), reason, "", "")
    clean = {k: v for k, v in row.items() if _present(v)}
    return judge_row(clean, reference_failure(reason))


def current_verdicts(df: pd.DataFrame) -> tuple[pd.DataFrame, Rejudged]:
    """``df`` with every verdict under ``VERDICT_POLICY`` (older ok rows re-judged), and what
    changed. Adds ``stored_verdict`` (the stored verdict of a re-judged row, else empty)."""
    summary = Rejudged()
    if df.empty or "verdict" not in df.columns:
        return df, summary
    out = df.copy()
    policies = (out["verdict_policy"] if "verdict_policy" in out.columns
                else pd.Series(math.nan, index=out.index)).map(row_policy)
    verdicts = out["verdict"].astype("string").fillna("")
    old = out.index[verdicts.isin(LEVELS) & (policies < VERDICT_POLICY)]
    out["stored_verdict"] = pd.Series("", index=out.index, dtype="string")
    if not len(old):
        return out, summary
    for column in ("verdict", "verdict_reason", "verdict_marginal", "verdict_joint"):
        out[column] = (out[column] if column in out.columns
                       else pd.Series(pd.NA, index=out.index)).astype("string")
    summary.n_rejudged = len(old)
    summary.policies = sorted({int(p) for p in policies[old]})
    for i in old:
        row = out.loc[i].to_dict()
        level, reason, marginal, joint = rejudge_row(row)
        was = str(row["verdict"])
        if level != was:
            summary.changes[(was, level)] += 1
            reason = f"{reason} (stored under policy {policies[i]}: {was})"
        out.at[i, "verdict"] = level
        out.at[i, "verdict_reason"] = reason
        out.at[i, "verdict_marginal"] = marginal
        out.at[i, "verdict_joint"] = joint
        out.at[i, "stored_verdict"] = was
    stored = (pd.to_numeric(out["verdict_policy"], errors="coerce") if "verdict_policy" in
              out.columns else pd.Series(math.nan, index=out.index, dtype="float64"))
    out["verdict_policy"] = stored.where(~out.index.isin(old), float(VERDICT_POLICY))
    return out, summary
