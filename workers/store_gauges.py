"""What the store's gauges show: flagged cases, activations waiting for
their UNREGISTERED deadline, and operator notices waiting for their action,
counted across all workers' SIMs.

Counted in a read-only transaction: on SQLite (WAL) it never waits for, nor
holds up, the single writer, so a count over a country's deadlines does not
stall the other workers' batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from simguard.store import Store, deadlines, notices, sims
from simguard.store.deadlines import UNREGISTERED as UNREGISTERED_DEADLINE


@dataclass(frozen=True)
class StoreCounts:
    flagged_cases: int
    pending_activations: int
    # (operator, status) -> count, for the statuses still waiting (open, overdue).
    pending_notices: dict[tuple[str, str], int]


def store_counts(store: Store) -> StoreCounts:
    with store.reading() as tx:
        return StoreCounts(
            flagged_cases=sims.count_flagged(tx),
            pending_activations=deadlines.count_pending(tx, UNREGISTERED_DEADLINE),
            pending_notices={
                (operator, status): count for operator, status, count in notices.pending_counts(tx)
            },
        )
