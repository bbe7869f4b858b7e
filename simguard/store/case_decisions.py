"""Table `case_decisions`: every regulator decision on a case and its outcome,
kept for good (the audit trail; a resend is recognised here, whatever its age)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simguard.store import Tx

COLUMNS = (
    "decision_id",
    "imsi",
    "action",
    "case_version",
    "reason",
    "codes",
    "expires_at",
    "decided_by",
    "decided_at",
    "outcome",
    "applied_at",
    "resulting_version",
    "content_hash",
)
# One value per column of COLUMNS, in that order.
DecisionRow = tuple[Any, ...]


def add(tx: Tx, rows: Sequence[DecisionRow]) -> None:
    if rows:
        tx.insert_rows("case_decisions", COLUMNS, rows)


def content_hash_of(tx: Tx, decision_id: str) -> str | None:
    """The content hash the decision was recorded with; None if it never was."""
    row = tx.fetchone(
        "SELECT content_hash FROM case_decisions WHERE decision_id = ?", (decision_id,)
    )
    return None if row is None else str(row[0])


def of_sim(tx: Tx, imsi: str) -> list[dict[str, Any]]:
    """The SIM's decisions, oldest first, one dict per row (without the hash)."""
    shown = COLUMNS[:-1]
    rows = tx.fetchall(
        f"SELECT {', '.join(shown)} FROM case_decisions WHERE imsi = ? "
        "ORDER BY decided_at, decision_id",
        (imsi,),
    )
    return [dict(zip(shown, row, strict=True)) for row in rows]
