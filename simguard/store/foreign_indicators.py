"""The `foreign_indicators` table: each partner's latest indicator per subject."""

from __future__ import annotations

from typing import Any

from simguard.store import Tx

COLUMNS = (
    "partner",
    "subject",
    "subject_type",
    "status",
    "reasons",
    "risk",
    "since",
    "case_version",
    "updated_at",
    "received_at",
)


def version_of(tx: Tx, partner: str, subject: str) -> int | None:
    row = tx.fetchone(
        "SELECT case_version FROM foreign_indicators WHERE partner = ? AND subject = ?",
        (partner, subject),
    )
    return None if row is None else int(row[0])


def put(tx: Tx, row: dict[str, Any]) -> None:
    """The indicator, in place of the subject's earlier one from that partner."""
    values = tuple(row[name] for name in COLUMNS)
    assignments = ", ".join(f"{name} = excluded.{name}" for name in COLUMNS[2:])
    tx.execute(
        f"INSERT INTO foreign_indicators ({', '.join(COLUMNS)}) "
        f"VALUES ({', '.join('?' for _ in COLUMNS)}) "
        f"ON CONFLICT (partner, subject) DO UPDATE SET {assignments}",
        values,
    )


def flagged(tx: Tx, partner: str | None, limit: int) -> list[dict[str, Any]]:
    """Flagged subjects, by partner then most recent first."""
    where, params = "status = 'flagged'", tuple[str, ...]()
    if partner is not None:
        where, params = "status = 'flagged' AND partner = ?", (partner,)
    rows = tx.fetchall(
        f"SELECT {', '.join(COLUMNS)} FROM foreign_indicators WHERE {where} "
        "ORDER BY partner, updated_at DESC, subject LIMIT ?",
        (*params, limit),
    )
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
