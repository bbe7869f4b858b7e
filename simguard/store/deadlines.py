"""Table `deadlines`: when a SIM next needs its worker's clock, an
UNREGISTERED judgement per pending activation or a behaviour rule's wake-up."""

from __future__ import annotations

from collections.abc import Sequence

from simguard.store import Tx

UNREGISTERED = "unregistered"
WAKE = "wake"
# An operator notice's deadline: open notices turn overdue at it.
NOTICE = "notice"

# (imsi, kind, ref): one activation's judgement, or a SIM's one wake-up.
DeadlineKey = tuple[str, str, str]
# (imsi, kind, ref, shard, due_at)
DeadlineRow = tuple[str, str, str, int, str]
# Due deadlines handled in one batch: bounded so that a backlog (a worker
# back after a long stop) is worked off over several short transactions.
DUE_PER_BATCH = 5000


def due(tx: Tx, shards: Sequence[int], now_text: str) -> list[tuple[str, str, str, int]]:
    """(imsi, kind, ref, shard) of the shards' deadlines due at `now_text`, oldest first."""
    if not shards:
        return []
    placeholders = ",".join("?" for _ in shards)
    return [
        (imsi, kind, ref, int(shard))
        for imsi, kind, ref, shard in tx.fetchall(
            f"SELECT imsi, kind, ref, shard FROM deadlines WHERE shard IN ({placeholders}) "
            "AND due_at <= ? ORDER BY due_at LIMIT ?",
            (*shards, now_text, DUE_PER_BATCH),
        )
    ]


def remove(tx: Tx, keys: Sequence[DeadlineKey]) -> None:
    if keys:
        tx.executemany("DELETE FROM deadlines WHERE imsi = ? AND kind = ? AND ref = ?", keys)


def add_new(tx: Tx, rows: Sequence[DeadlineRow]) -> None:
    """Adds deadlines, keeping the time of any already there (a resent activation's)."""
    if not rows:
        return
    tx.executemany(
        "INSERT INTO deadlines (imsi, kind, ref, shard, due_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (imsi, kind, ref) DO NOTHING",
        rows,
    )


def set_due(tx: Tx, rows: Sequence[DeadlineRow]) -> None:
    """Adds deadlines or moves existing ones to the rows' times."""
    if not rows:
        return
    tx.executemany(
        "INSERT INTO deadlines (imsi, kind, ref, shard, due_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (imsi, kind, ref) DO UPDATE SET due_at = excluded.due_at, "
        "shard = excluded.shard",
        rows,
    )


def count_pending(tx: Tx, kind: str) -> int:
    row = tx.fetchone("SELECT count(*) FROM deadlines WHERE kind = ?", (kind,))
    return int(row[0]) if row else 0
