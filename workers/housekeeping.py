"""Pruning what the store need not keep forever: the idempotency ledger's
days and dealers' activations older than `ledger_retention_days`. In small
batches, so that the worker's own transactions never wait long behind it.
On PostgreSQL it also makes the ledger's partitions for the days ahead."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from simguard.store import Store, Tx, dealer_activations, ledger
from simguard.timefmt import to_text

PRUNE_BATCH_ROWS = 5_000


def prune(
    store: Store, retention_days: int, now: datetime, guard: Callable[[Tx], None] | None = None
) -> int:
    """Delete ledger days and dealer activations older than the retention.
    `guard` runs first in each transaction (a worker's shard fence) and may
    raise to undo it."""
    today = ledger.day_of(now)
    cutoff = to_text(now - timedelta(days=retention_days))
    cutoff_day = today - retention_days
    steps: tuple[Callable[[Tx], int], ...] = (
        lambda tx: ledger.prune_before(tx, cutoff_day, PRUNE_BATCH_ROWS),
        lambda tx: dealer_activations.prune_older_than(tx, cutoff, PRUNE_BATCH_ROWS),
    )
    with store.transaction() as tx:
        if guard is not None:
            guard(tx)
        ledger.prepare_days(tx, today)
    removed = 0
    for step in steps:
        while True:
            with store.transaction() as tx:
                if guard is not None:
                    guard(tx)
                pruned = step(tx)
            removed += pruned
            if pruned < PRUNE_BATCH_ROWS:
                break
    return removed
