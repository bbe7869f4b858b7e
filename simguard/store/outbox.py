"""Tables `outbox` (records a batch produced, waiting to be published) and
`shard_cursors` (each shard's next outbox sequence number)."""

from __future__ import annotations

from collections.abc import Sequence

from simguard.store import Tx

# topic, msg_key, msg_value, accepted_at
OutboxValues = tuple[str, str | None, str, str | None]
# seq, topic, msg_key, msg_value, accepted_at
StoredRow = tuple[int, str, str | None, str, str | None]


def append(tx: Tx, shard: int, rows: Sequence[OutboxValues]) -> None:
    """Adds rows to the shard's outbox, numbered on from its cursor, under the
    shard's lock: two transactions of one shard never take the same numbers."""
    tx.lock(f"simguard.shard.{shard}")
    tx.execute(
        "INSERT INTO shard_cursors (shard, next_seq) VALUES (?, 1) ON CONFLICT (shard) DO NOTHING",
        (shard,),
    )
    found = tx.fetchone("SELECT next_seq FROM shard_cursors WHERE shard = ?", (shard,))
    assert found is not None
    first = int(found[0])
    tx.executemany(
        "INSERT INTO outbox (shard, seq, topic, msg_key, msg_value, accepted_at) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(shard, first + i, *row) for i, row in enumerate(rows)],
    )
    tx.execute("UPDATE shard_cursors SET next_seq = ? WHERE shard = ?", (first + len(rows), shard))


def after(tx: Tx, shard: int, seq: int) -> list[StoredRow]:
    """The shard's rows numbered after `seq`, in order."""
    return [
        (int(row_seq), topic, key, value, accepted)
        for row_seq, topic, key, value, accepted in tx.fetchall(
            "SELECT seq, topic, msg_key, msg_value, accepted_at FROM outbox "
            "WHERE shard = ? AND seq > ? ORDER BY seq",
            (shard, seq),
        )
    ]


def delete_through(tx: Tx, shard: int, seq: int) -> None:
    tx.execute("DELETE FROM outbox WHERE shard = ? AND seq <= ?", (shard, seq))
