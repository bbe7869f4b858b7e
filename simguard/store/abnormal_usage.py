"""The `abnormal_usage` table: daily usage reports that met a usage rule's
daily condition, kept for the weekly abnormal-usage report."""

from __future__ import annotations

from typing import Any

from simguard.store import Tx

COLUMNS = (
    "imsi",
    "day",
    "operator",
    "msisdn",
    "outgoing_calls",
    "distinct_called_numbers",
    "distinct_cells",
    "top_cell_share",
)


def add(tx: Tx, day: int, event: dict[str, Any], msisdn: str | None) -> None:
    """One SIM's day (a day is reported once: a second row adds nothing)."""
    tx.execute(
        f"INSERT INTO abnormal_usage ({', '.join(COLUMNS)}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (imsi, day) DO NOTHING",
        (
            event["imsi"],
            day,
            event["operator"],
            msisdn,
            int(event["outgoing_calls"]),
            int(event["distinct_called_numbers"]),
            int(event["distinct_cells"]),
            float(event["top_cell_share"]),
        ),
    )


def between(tx: Tx, first_day: int, last_day: int) -> list[dict[str, Any]]:
    """Every row of the days `first_day` to `last_day`, by operator, SIM and day."""
    rows = tx.fetchall(
        f"SELECT {', '.join(COLUMNS)} FROM abnormal_usage WHERE day >= ? AND day <= ? "
        "ORDER BY operator, imsi, day",
        (first_day, last_day),
    )
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]


def prune_before(tx: Tx, cutoff_day: int, limit: int) -> int:
    """Delete at most `limit` rows of days before `cutoff_day`; how many went."""
    old = tx.fetchall(
        "SELECT imsi, day FROM abnormal_usage WHERE day < ? LIMIT ?", (cutoff_day, limit)
    )
    tx.executemany("DELETE FROM abnormal_usage WHERE imsi = ? AND day = ?", old)
    return len(old)
