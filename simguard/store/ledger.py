"""Table `processed_events`: the idempotency ledger, each applied event's id
with the hash of its content and when it was applied."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from simguard.store import Tx
from simguard.store.in_lists import in_chunks


def content_hashes(tx: Tx, event_ids: Sequence[str]) -> dict[str, str]:
    """event id -> content hash, for those of `event_ids` already applied."""
    known: dict[str, str] = {}
    for chunk, placeholders in in_chunks(event_ids):
        for event_id, content_hash in tx.fetchall(
            "SELECT event_id, content_hash FROM processed_events "
            f"WHERE event_id IN ({placeholders})",
            chunk,
        ):
            known[event_id] = content_hash
    return known


def record_applied(tx: Tx, hashes: Mapping[str, str], processed_at: str) -> None:
    if hashes:
        tx.executemany(
            "INSERT INTO processed_events (event_id, content_hash, processed_at) VALUES (?, ?, ?)",
            [(event_id, content_hash, processed_at) for event_id, content_hash in hashes.items()],
        )


def prune_older_than(tx: Tx, cutoff: str, limit: int) -> int:
    """Delete at most `limit` entries processed before `cutoff`; how many went."""
    old = tx.fetchall(
        "SELECT event_id FROM processed_events WHERE processed_at < ? LIMIT ?", (cutoff, limit)
    )
    tx.executemany("DELETE FROM processed_events WHERE event_id = ?", old)
    return len(old)


def all_event_ids(tx: Tx) -> set[str]:
    """Every event id the ledger holds: what a soak run checks its acknowledged events against."""
    return {str(row[0]) for row in tx.fetchall("SELECT event_id FROM processed_events")}
