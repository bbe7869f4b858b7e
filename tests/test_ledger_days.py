"""The idempotency ledger's day buckets, on both backends: what a lookup
recognises, what pruning removes, the partitions PostgreSQL keeps, and the
move of an older store's ledger into its days."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from simguard.settings import ConfigError, load_settings
from simguard.store import Store, Tx, ledger, open_store

TODAY = ledger.day_of("2026-12-07T10:00:00Z")
RETENTION = 7
HASH = bytes.fromhex("0102030405060708")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("postgres_database"))
    return f"sqlite:///{tmp_path}/ledger.db"


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def applied_on(store: Store, day: int, *event_ids: str) -> None:
    with store.transaction() as tx:
        ledger.prepare_days(tx, day)
        ledger.record_applied(tx, dict.fromkeys(event_ids, HASH), day)


def lookup(store: Store, event_ids: list[str], today: int = TODAY) -> dict[str, bytes]:
    with store.reading() as tx:
        return ledger.content_hashes(tx, event_ids, today, RETENTION)


def partitions(tx: Tx) -> list[str]:
    return sorted(
        str(name)
        for (name,) in tx.fetchall(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'processed_events'::regclass"
        )
    )


def test_an_event_applied_on_the_first_day_of_the_window_is_recognised(store: Store) -> None:
    applied_on(store, TODAY - RETENTION, "e-1")

    assert lookup(store, ["e-1", "e-2"]) == {"e-1": HASH}


def test_an_event_applied_before_the_window_is_not_recognised_even_unpruned(
    store: Store,
) -> None:
    applied_on(store, TODAY - RETENTION - 1, "e-1")

    assert lookup(store, ["e-1"]) == {}


def test_an_event_applied_tomorrow_by_a_clock_ahead_is_recognised(store: Store) -> None:
    applied_on(store, TODAY + 1, "e-1")

    assert lookup(store, ["e-1"]) == {"e-1": HASH}


def test_pruning_walks_the_ledger_in_chunks_and_removes_only_days_before_the_cutoff(
    store: Store,
) -> None:
    for day in range(TODAY - 10, TODAY + 1):
        applied_on(store, day, f"e-{day}")

    with store.transaction() as tx:
        assert ledger.expired_days(tx, TODAY - RETENTION) == list(range(TODAY - 10, TODAY - 7))
        after: bytes | None = b""
        while after is not None:
            _, after = ledger.prune_before(tx, TODAY - RETENTION, limit=2, after=after)
        kept = sorted({int(day) for (day,) in tx.fetchall("SELECT day FROM processed_events")})
        assert ledger.expired_days(tx, TODAY - RETENTION) == []

    assert kept == list(range(TODAY - RETENTION, TODAY + 1))


@pytest.mark.postgres
def test_postgresql_makes_a_partition_for_today_and_the_days_ahead(
    postgres_database: str,
) -> None:
    store = open_store(postgres_database)
    try:
        with store.transaction() as tx:
            ledger.prepare_days(tx, TODAY)
            made = partitions(tx)
    finally:
        store.close()

    expected = [f"processed_events_day_{day}" for day in range(TODAY, TODAY + 3)]
    assert set(expected) <= set(made)


@pytest.mark.postgres
def test_postgresql_drops_an_expired_day_as_a_whole_partition(postgres_database: str) -> None:
    store = open_store(postgres_database)
    try:
        old = TODAY - RETENTION - 1
        applied_on(store, old, "e-old")
        applied_on(store, TODAY, "e-today")
        with store.transaction() as tx:
            ledger.prune_before(tx, TODAY - RETENTION, limit=1000)
            made = partitions(tx)
            kept = tx.fetchall("SELECT day FROM processed_events")
    finally:
        store.close()

    assert f"processed_events_day_{old}" not in made
    assert kept == [(TODAY,)]


@pytest.mark.postgres
def test_a_day_with_rows_in_the_default_partition_stays_there_and_is_still_found(
    postgres_database: str,
) -> None:
    store = open_store(postgres_database)
    far = TODAY + 30
    try:
        with store.transaction() as tx:
            ledger.record_applied(tx, {"e-far": HASH}, far)
        with store.transaction() as tx:
            ledger.prepare_days(tx, far)
            made = partitions(tx)
        found = lookup(store, ["e-far"], today=far)
    finally:
        store.close()

    assert f"processed_events_day_{far}" not in made
    assert found == {"e-far": HASH}


def test_the_ledger_of_an_older_store_moves_into_its_days(store: Store, store_url: str) -> None:
    """Migration 6 on a store whose ledger still has event ids, hex hashes
    and times: the same lookups answer the same afterwards."""
    hex_hash = HASH.hex() + "ff" * 24
    with store.transaction() as tx:
        tx.execute("DROP TABLE processed_events")
        tx.execute("DROP TABLE IF EXISTS processed_event_days")
        tx.execute(
            "CREATE TABLE processed_events (event_id TEXT PRIMARY KEY, "
            "content_hash TEXT NOT NULL, processed_at TEXT NOT NULL)"
        )
        tx.execute("CREATE INDEX processed_events_time ON processed_events (processed_at)")
        tx.executemany(
            "INSERT INTO processed_events (event_id, content_hash, processed_at) VALUES (?, ?, ?)",
            [("e-1", hex_hash, "2026-12-06T23:59:59Z"), ("e-2", hex_hash, "2026-12-07T00:00:01Z")],
        )
        tx.execute("DELETE FROM schema_migrations WHERE version = 6")
    store.close()

    migrated = open_store(store_url)
    try:
        with migrated.reading() as tx:
            days = sorted(int(day) for (day,) in tx.fetchall("SELECT day FROM processed_events"))
        assert days == [TODAY - 1, TODAY]
        assert lookup(migrated, ["e-1", "e-2", "e-3"]) == {"e-1": HASH, "e-2": HASH}
    finally:
        migrated.close()


def test_a_ledger_window_shorter_than_the_border_rules_window_is_refused(
    tmp_path: Path,
) -> None:
    """A resend the ledger has forgotten is applied again; the border rule
    counts observations, so by then its window must have passed the event."""
    config = tmp_path / "simguard.toml"
    config.write_text("ledger_retention_days = 6\nborder_dwell_window_days = 7\n")

    with pytest.raises(ConfigError, match="ledger_retention_days"):
        load_settings(environ={"SIMGUARD_CONFIG": str(config)})
