"""Pruning the ledger's days and dealers' activations by age."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from simguard.store import ledger, open_store
from simguard.timefmt import to_text
from workers.housekeeping import prune

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def test_prune_removes_only_what_is_older_than_the_retention(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    old, recent = NOW - timedelta(days=8), NOW - timedelta(days=7)
    with store.transaction() as tx:
        ledger.record_applied(tx, {"old": bytes(8)}, ledger.day_of(old))
        ledger.record_applied(tx, {"recent": bytes(8)}, ledger.day_of(recent))
        tx.executemany(
            "INSERT INTO dealer_activations (dealer_key, imsi, activated_at) VALUES (?, ?, ?)",
            [
                ("52003:d1", "520030000000001", to_text(old)),
                ("52003:d1", "520030000000002", to_text(recent + timedelta(hours=1))),
            ],
        )
    assert prune(store, retention_days=7, now=NOW) == 2
    with store.reading() as tx:
        kept = tx.fetchall("SELECT day FROM processed_events")
        dealers = tx.fetchall("SELECT imsi FROM dealer_activations")
    assert kept == [(ledger.day_of(recent),)]
    assert dealers == [("520030000000002",)]


def test_prune_removes_handsets_sightings_of_days_older_than_the_retention(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path}/s.db")
    old, recent = NOW - timedelta(days=8), NOW - timedelta(days=7)
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO device_sims (device, day, imsi) VALUES (?, ?, ?)",
            [
                (35332509000001, ledger.day_of(old), "520030000000001"),
                (35332509000001, ledger.day_of(recent), "520030000000002"),
            ],
        )
    assert prune(store, retention_days=7, now=NOW) == 1
    with store.reading() as tx:
        kept = tx.fetchall("SELECT imsi FROM device_sims")
    assert kept == [("520030000000002",)]
