"""Migration 5 moves each flagged SIM's case record out of the worker's state
into a column of its own, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import orjson
import pytest

from simguard.store import Store, apply_migrations

CASE = {"imsi": "520030000000007", "status": "flagged", "version": 1, "reasons": []}


@pytest.fixture
def store(store_on_each_backend: Store) -> Store:
    return store_on_each_backend


def _as_before_migration_5(store: Store) -> None:
    """The table as a store migrated up to 4 has it, with rows the worker wrote then."""
    with store.transaction() as tx:
        tx.execute("ALTER TABLE sims DROP COLUMN case_record")
        tx.execute("DELETE FROM schema_migrations WHERE version = 5")
        tx.executemany(
            "INSERT INTO sims (imsi, shard, case_status, state) VALUES (?, 0, ?, ?)",
            [
                ("520030000000007", "flagged", orjson.dumps({"case": CASE}).decode()),
                ("520030000000008", None, orjson.dumps({"case": None}).decode()),
            ],
        )


def test_a_flagged_sims_case_record_is_copied_into_its_column(store: Store) -> None:
    _as_before_migration_5(store)

    apply_migrations(store)

    with store.reading() as tx:
        rows = dict(tx.fetchall("SELECT imsi, case_record FROM sims ORDER BY imsi"))
    assert orjson.loads(rows["520030000000007"]) == CASE
    assert rows["520030000000008"] is None
