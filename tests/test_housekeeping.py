"""Pruning the ledger and dealers' activations by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from simguard.store import open_store
from simguard.timefmt import to_text
from workers.housekeeping import prune

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_prune_removes_only_rows_older_than_the_retention(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    old, recent = to_text(NOW - timedelta(days=31)), to_text(NOW - timedelta(days=29))
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO processed_events (event_id, content_hash, processed_at) VALUES (?, ?, ?)",
            [("old", "h", old), ("recent", "h", recent)],
        )
        tx.executemany(
            "INSERT INTO dealer_activations (dealer_key, imsi, activated_at) VALUES (?, ?, ?)",
            [("52003:d1", "520030000000001", old), ("52003:d1", "520030000000002", recent)],
        )
    assert prune(store, retention_days=30, now=NOW) == 2
    with store.reading() as tx:
        ledger = tx.fetchall("SELECT event_id FROM processed_events")
        dealers = tx.fetchall("SELECT imsi FROM dealer_activations")
    assert ledger == [("recent",)]
    assert dealers == [("520030000000002",)]
