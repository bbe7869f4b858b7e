"""Pruning what the store need not keep forever: the idempotency ledger's
days, dealers' activations and handsets' SIMs older than `ledger_retention_days`,
and abnormal usage days older than `usage_report_retention_days`. In small
batches, so that the worker's own transactions never wait long behind it.
On PostgreSQL it also makes the ledger's partitions for the days ahead."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime, timedelta

from simguard.store import Store, Tx, abnormal_usage, dealer_activations, device_sims, ledger
from simguard.timefmt import to_text

PRUNE_BATCH_ROWS = 5_000


def prune(
    store: Store,
    retention_days: int,
    now: datetime,
    guard: Callable[[Tx], None] | None = None,
    report_retention_days: int | None = None,
) -> int:
    """Delete what is older than the retention (the abnormal usage days: older
    than `report_retention_days`, when given). `guard` runs first in each
    transaction (a worker's shard fence) and may raise to undo it."""
    today = ledger.day_of(now)

    @contextmanager
    def transaction() -> Iterator[Tx]:
        with store.transaction() as tx:
            if guard is not None:
                guard(tx)
            yield tx

    with transaction() as tx:
        ledger.prepare_days(tx, today)
        expired = ledger.expired_days(tx, today - retention_days)
    removed = _prune_ledger(transaction, today - retention_days) if expired else 0
    cutoff = to_text(now - timedelta(days=retention_days))
    removed += _in_chunks(
        transaction,
        lambda tx: dealer_activations.prune_older_than(tx, cutoff, PRUNE_BATCH_ROWS),
    )
    removed += _in_chunks(
        transaction,
        lambda tx: device_sims.prune_before(tx, today - retention_days, PRUNE_BATCH_ROWS),
    )
    if report_retention_days is not None:
        removed += _in_chunks(
            transaction,
            lambda tx: abnormal_usage.prune_before(
                tx, today - report_retention_days, PRUNE_BATCH_ROWS
            ),
        )
    return removed


def _in_chunks(
    transaction: Callable[[], AbstractContextManager[Tx]], prune_chunk: Callable[[Tx], int]
) -> int:
    """`prune_chunk` a transaction at a time until it removes less than a chunk."""
    removed = 0
    while True:
        with transaction() as tx:
            pruned = prune_chunk(tx)
        removed += pruned
        if pruned < PRUNE_BATCH_ROWS:
            return removed


def _prune_ledger(transaction: Callable[[], AbstractContextManager[Tx]], cutoff_day: int) -> int:
    """One walk over the ledger in key order, a chunk per transaction."""
    removed, after = 0, b""
    while True:
        with transaction() as tx:
            pruned, resume = ledger.prune_before(tx, cutoff_day, PRUNE_BATCH_ROWS, after)
        removed += pruned
        if resume is None:
            return removed
        after = resume
