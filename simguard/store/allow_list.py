"""Table `allow_list`: IMSIs and holders a regulator has cleared for some or
all reasons until an expiry. Read by every batch for the SIMs it evaluates,
written by the API and `simguard allow-list load`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from simguard.store import Tx
from simguard.store.in_lists import in_chunks

COLUMNS = ("entry_id", "kind", "value", "codes", "expires_at", "note", "added_by", "added_at")
# One value per column of COLUMNS; `codes` comma-separated, empty for all.
EntryRow = tuple[str, str, str, str, str, str, str, str]
# value, codes (comma-separated, empty: all), expires_at
InForce = tuple[str, str, str]


def add(tx: Tx, rows: Sequence[EntryRow]) -> None:
    if rows:
        tx.insert_rows("allow_list", COLUMNS, rows)


def remove(tx: Tx, entry_id: str, at: str) -> tuple[str, str] | None:
    """Marks the entry removed; its (kind, value), or None if there is no such entry in force."""
    row = tx.fetchone(
        "SELECT kind, value FROM allow_list WHERE entry_id = ? AND removed_at IS NULL",
        (entry_id,),
    )
    if row is None:
        return None
    tx.execute("UPDATE allow_list SET removed_at = ? WHERE entry_id = ?", (at, entry_id))
    return str(row[0]), str(row[1])


def in_force_for(tx: Tx, values: Sequence[str], now: str) -> list[InForce]:
    """The entries not removed nor expired at `now` for any of `values` (IMSIs, holder refs)."""
    found: list[InForce] = []
    for chunk, placeholders in in_chunks(sorted(set(values))):
        found += [
            (str(value), str(codes), str(expires_at))
            for value, codes, expires_at in tx.fetchall(
                f"SELECT value, codes, expires_at FROM allow_list WHERE value IN ({placeholders}) "
                "AND removed_at IS NULL AND expires_at > ?",
                (*chunk, now),
            )
        ]
    return found


def listed(tx: Tx, now: str) -> list[dict[str, Any]]:
    """Every entry in force at `now`, oldest first."""
    rows = tx.fetchall(
        f"SELECT {', '.join(COLUMNS)} FROM allow_list WHERE removed_at IS NULL "
        "AND expires_at > ? ORDER BY added_at, entry_id",
        (now,),
    )
    return [dict(zip(COLUMNS, row, strict=True)) for row in rows]
