"""Counts applications of events, not ledger rows.

An event is applied when a transaction that inserts its ledger row commits;
the ledger's primary key makes its row count equal to the distinct event ids
whatever happens, so it cannot show an event applied twice (after its row was
pruned, say). A trigger installed by the test appends one row per committed
insert to a table with no key, in the worker's own transaction (on
PostgreSQL the trigger on the partitioned ledger is cloned to every partition,
those made later included)."""

from __future__ import annotations

from simguard.settings import Settings
from simguard.store import open_store

_SQLITE = (
    "CREATE TABLE IF NOT EXISTS test_applications (event_key BLOB NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS test_count_applications AFTER INSERT ON processed_events "
    "BEGIN INSERT INTO test_applications (event_key) VALUES (NEW.event_key); END",
)
_POSTGRESQL = (
    "CREATE TABLE IF NOT EXISTS test_applications (event_key bytea NOT NULL)",
    "CREATE OR REPLACE FUNCTION test_count_application() RETURNS trigger AS $$ "
    "BEGIN INSERT INTO test_applications (event_key) VALUES (NEW.event_key); RETURN NEW; END "
    "$$ LANGUAGE plpgsql",
    "CREATE OR REPLACE TRIGGER test_count_applications AFTER INSERT ON processed_events "
    "FOR EACH ROW EXECUTE FUNCTION test_count_application()",
)


def count_applications(settings: Settings) -> None:
    """From now on, every application of an event in this store is counted."""
    store = open_store(settings.database_url)
    statements = _POSTGRESQL if settings.database_url.startswith("postgres") else _SQLITE
    try:
        with store.transaction() as tx:
            for statement in statements:
                tx.execute(statement)
    finally:
        store.close()


def applications(settings: Settings) -> tuple[int, int]:
    """(applications counted, distinct events among them)."""
    store = open_store(settings.database_url, migrate=False)
    try:
        with store.transaction() as tx:
            row = tx.fetchone("SELECT count(*), count(DISTINCT event_key) FROM test_applications")
    finally:
        store.close()
    assert row is not None
    return int(row[0]), int(row[1])
