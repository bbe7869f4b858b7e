"""Pruning what the store need not keep forever: the idempotency ledger and
dealers' activations older than `ledger_retention_days`. In small batches, so
that the worker's own transactions never wait long behind it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from simguard.store import Store, Tx
from simguard.timefmt import to_text

PRUNE_BATCH_ROWS = 5_000


def prune(
    store: Store, retention_days: int, now: datetime, guard: Callable[[Tx], None] | None = None
) -> int:
    """Delete ledger entries and dealer activations older than the retention.
    `guard` runs first in each transaction (a worker's shard fence) and may
    raise to undo it."""
    cutoff = to_text(now - timedelta(days=retention_days))
    removed = 0
    while True:
        with store.transaction() as tx:
            if guard is not None:
                guard(tx)
            old = tx.fetchall(
                "SELECT event_id FROM processed_events WHERE processed_at < ? LIMIT ?",
                (cutoff, PRUNE_BATCH_ROWS),
            )
            tx.executemany("DELETE FROM processed_events WHERE event_id = ?", old)
        removed += len(old)
        if len(old) < PRUNE_BATCH_ROWS:
            break
    while True:
        with store.transaction() as tx:
            if guard is not None:
                guard(tx)
            old = tx.fetchall(
                "SELECT dealer_key, imsi, activated_at FROM dealer_activations "
                "WHERE activated_at < ? LIMIT ?",
                (cutoff, PRUNE_BATCH_ROWS),
            )
            tx.executemany(
                "DELETE FROM dealer_activations WHERE dealer_key = ? AND imsi = ? "
                "AND activated_at = ?",
                old,
            )
        removed += len(old)
        if len(old) < PRUNE_BATCH_ROWS:
            break
    return removed
