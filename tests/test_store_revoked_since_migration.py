"""Migration 7 gives each registration row since when it has been revoked,
from the SIM's history, on SQLite and PostgreSQL alike; SQLite's history
table is rebuilt keyed by its primary key alone and keeps every event."""

from __future__ import annotations

from pathlib import Path

import pytest

from simguard.store import Store, apply_migrations, open_store

HOLDER = "h" * 64
# (imsi, registered_at second, event_id, status) of each SIM's history.
HISTORY = [
    ("520030000000001", 1, "e1", "active"),
    ("520030000000001", 2, "e2", "suspended"),
    ("520030000000001", 3, "e3", "deregistered"),
    ("520030000000002", 1, "e4", "suspended"),
    ("520030000000002", 2, "e5", "active"),
    # The same time as the active event, after it by event id: revoked then.
    ("520030000000003", 1, "e6", "active"),
    ("520030000000003", 1, "e7", "suspended"),
]


def _at(second: int) -> str:
    return f"2026-11-02T03:00:0{second}.000000Z"


@pytest.fixture
def store(store_on_each_backend: Store) -> Store:
    return store_on_each_backend


def _as_before_migration_7(store: Store) -> None:
    """The tables as a store migrated up to 6 has them, with a few SIMs' histories."""
    with store.transaction() as tx:
        tx.execute("ALTER TABLE registrations DROP COLUMN revoked_since")
        tx.execute("DELETE FROM schema_migrations WHERE version = 7")
        tx.executemany(
            "INSERT INTO registration_events (imsi, registered_at, event_id, holder_ref, status, "
            "verification) VALUES (?, ?, ?, ?, ?, 'in_person')",
            [(imsi, _at(second), event, HOLDER, status) for imsi, second, event, status in HISTORY],
        )
        latest: dict[str, tuple[int, str, str]] = {}
        for imsi, second, event, status in HISTORY:
            latest[imsi] = max(latest.get(imsi, (0, "", "")), (second, event, status))
        tx.executemany(
            "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
            "holder_nationality, verification, status, registered_at, holder_since, "
            "holder_since_event) VALUES (?, ?, '52003', '8966', '+66', ?, 'TH', 'in_person', ?, "
            "?, ?, ?)",
            [
                (imsi, event, HOLDER, status, _at(second), _at(1), event)
                for imsi, (second, event, status) in latest.items()
            ],
        )


def test_a_revoked_registration_is_revoked_since_the_first_event_after_its_last_active_one(
    store: Store,
) -> None:
    _as_before_migration_7(store)

    apply_migrations(store)

    with store.reading() as tx:
        rows = tx.fetchall("SELECT imsi, revoked_since FROM registrations ORDER BY imsi")
    assert rows == [
        ("520030000000001", _at(2)),
        ("520030000000002", None),
        ("520030000000003", _at(1)),
    ]


def test_the_history_keeps_every_event_through_the_migration(store: Store) -> None:
    _as_before_migration_7(store)

    apply_migrations(store)

    with store.reading() as tx:
        events = tx.fetchall("SELECT event_id FROM registration_events ORDER BY event_id")
    assert [event for (event,) in events] == [event for _, _, event, _ in HISTORY]


def test_sqlite_keeps_the_history_in_its_primary_key_alone(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/simguard.db")
    try:
        with store.reading() as tx:
            (sql,) = tx.fetchone(
                "SELECT sql FROM sqlite_schema WHERE name = 'registration_events'"
            ) or ("",)
    finally:
        store.close()
    assert sql.rstrip().endswith("WITHOUT ROWID")
