"""The index a holder's active SIMs are found by: what it holds, what uses it,
and a store made before it that is brought up to it when opened."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from simguard.store import SqliteStore, migrations, open_store
from simguard.store.registrations import HOLDER_INDEX
from workers.registry import members_of

HOLDER = "a" * 64


def _registration(imsi: str, holder: str, status: str, since: str) -> tuple[str, ...]:
    return (
        imsi,
        f"e-{imsi}",
        "52003",
        "8966",
        "+66812345678",
        holder,
        "TH",
        "in_person",
        status,
        since,
        since,
        f"e-{imsi}",
    )


def _fill(store: SqliteStore, rows: list[tuple[str, ...]]) -> None:
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
            "holder_nationality, verification, status, registered_at, holder_since, "
            "holder_since_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def _open(path: Path) -> SqliteStore:
    store = open_store(f"sqlite:///{path}")
    assert isinstance(store, SqliteStore)
    return store


def test_a_holders_active_sims_are_read_through_the_holder_index(tmp_path: Path) -> None:
    store = _open(tmp_path / "store.db")
    try:
        with store.reading() as tx:
            plan = tx.fetchall(
                "EXPLAIN QUERY PLAN SELECT imsi, holder_since, holder_since_event "
                "FROM registrations WHERE holder_ref = ? AND status = 'active'",
                (HOLDER,),
            )
        assert any(f"INDEX {HOLDER_INDEX} " in row[-1] for row in plan), plan
    finally:
        store.close()


def test_the_holder_index_holds_only_active_registrations(tmp_path: Path) -> None:
    store = _open(tmp_path / "store.db")
    try:
        _fill(
            store,
            [
                _registration("520030000000001", HOLDER, "active", "2026-01-01T00:00:00Z"),
                _registration("520030000000002", HOLDER, "suspended", "2026-01-02T00:00:00Z"),
                _registration("520030000000003", HOLDER, "active", "2026-01-03T00:00:00Z"),
            ],
        )
        with store.reading() as tx:
            indexed = tx.fetchall(
                f"SELECT count(*) FROM registrations INDEXED BY {HOLDER_INDEX} "
                "WHERE holder_ref = ? AND status = 'active'",
                (HOLDER,),
            )
            members = members_of(tx, [HOLDER])[HOLDER]
        assert indexed == [(2,)]
        assert members == {
            "520030000000001": ("2026-01-01T00:00:00Z", "e-520030000000001", "52003", "TH"),
            "520030000000003": ("2026-01-03T00:00:00Z", "e-520030000000003", "52003", "TH"),
        }
    finally:
        store.close()


def test_a_store_made_before_the_holder_index_changed_is_given_the_new_one_on_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    first_version, first_sql = migrations()[0]
    with sqlite3.connect(path) as connection:
        connection.executescript(first_sql)
        connection.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        connection.execute(
            "INSERT INTO schema_migrations VALUES (?, '2026-11-23T00:00:00Z')", (first_version,)
        )
    connection.close()
    store = _open(path)
    try:
        _fill(store, [_registration("520030000000001", HOLDER, "active", "2026-01-01T00:00:00Z")])
        with store.reading() as tx:
            indexes = {
                row[0]
                for row in tx.fetchall(
                    "SELECT name FROM sqlite_schema WHERE type = 'index' "
                    "AND tbl_name = 'registrations' AND sql IS NOT NULL"
                )
            }
            members = members_of(tx, [HOLDER])[HOLDER]
        assert indexes == {HOLDER_INDEX}
        assert members == {
            "520030000000001": ("2026-01-01T00:00:00Z", "e-520030000000001", "52003", "TH")
        }
    finally:
        store.close()
