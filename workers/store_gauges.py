"""What the store's gauges show: flagged cases and activations waiting for
their UNREGISTERED deadline, counted across all workers' SIMs.

Counted in a read-only transaction: on SQLite (WAL) it never waits for, nor
holds up, the single writer, so a count over a country's deadlines does not
stall the other workers' batches.
"""

from __future__ import annotations

from dataclasses import dataclass

from simguard.store import Store
from simguard.store.deadlines import UNREGISTERED as UNREGISTERED_DEADLINE


@dataclass(frozen=True)
class StoreCounts:
    flagged_cases: int
    pending_activations: int


def store_counts(store: Store) -> StoreCounts:
    with store.reading() as tx:
        flagged = tx.fetchone("SELECT count(*) FROM sims WHERE case_status = 'flagged'")
        pending = tx.fetchone(
            "SELECT count(*) FROM deadlines WHERE kind = ?", (UNREGISTERED_DEADLINE,)
        )
    return StoreCounts(
        flagged_cases=int(flagged[0]) if flagged else 0,
        pending_activations=int(pending[0]) if pending else 0,
    )
