"""Pruning what the store need not keep forever: the idempotency ledger and
dealers' activations older than `ledger_retention_days`. In small batches, so
that the worker's own transactions never wait long behind it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from simguard.store import Store, Tx, dealer_activations, ledger
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
    for prune_older_than in (ledger.prune_older_than, dealer_activations.prune_older_than):
        while True:
            with store.transaction() as tx:
                if guard is not None:
                    guard(tx)
                pruned = prune_older_than(tx, cutoff, PRUNE_BATCH_ROWS)
            removed += pruned
            if pruned < PRUNE_BATCH_ROWS:
                break
    return removed
