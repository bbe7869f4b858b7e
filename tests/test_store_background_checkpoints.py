"""SQLite WAL checkpoints taken by a thread of the store instead of by the
committing writer: what reaches the database file, what bounds the WAL, what
the checkpoint waits for."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from worker_helpers import wait_for

from simguard.store import SqliteStore, open_store

MIB = 1024 * 1024


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}", background_checkpoints=True)
    assert isinstance(opened, SqliteStore)
    with opened.transaction() as tx:
        tx.execute("CREATE TABLE blob (n INTEGER PRIMARY KEY, data BLOB)")
    yield opened
    opened.close()


def _write(store: SqliteStore, first: int, mib: int) -> None:
    with store.transaction() as tx:
        tx.executemany(
            "INSERT INTO blob (n, data) VALUES (?, randomblob(65536))",
            [(n,) for n in range(first, first + mib * 16)],
        )


def _size(path: str) -> int:
    return os.path.getsize(path) if os.path.exists(path) else 0


def test_committed_pages_reach_the_database_file_below_the_automatic_threshold(
    store: SqliteStore,
) -> None:
    # 2 MiB is half of SQLite's automatic threshold (1,000 pages): a commit
    # checkpointing by itself would leave all of it in the WAL.
    _write(store, 0, 2)
    assert wait_for(lambda: _size(store.path) >= 2 * MIB, timeout=10, interval=0.02)


def test_the_wal_starts_over_instead_of_growing_with_the_commits(store: SqliteStore) -> None:
    largest = 0
    for step in range(24):
        _write(store, step * 16, 1)
        largest = max(largest, _size(f"{store.path}-wal"))
        # What a worker does between two store transactions (its Kafka
        # transaction, its next poll) leaves the checkpoint its turn.
        time.sleep(0.05)
    assert largest < 12 * MIB
    assert wait_for(lambda: _size(store.path) >= 24 * MIB, timeout=10, interval=0.02)


def test_a_checkpoint_waits_for_the_writer_turn_another_process_holds(
    store: SqliteStore,
) -> None:
    _write(store, 0, 1)
    held = os.open(f"{store.path}-writer.lock", os.O_RDWR)
    done = threading.Event()
    try:
        fcntl.flock(held, fcntl.LOCK_EX)

        def checkpoint() -> None:
            store.checkpoint()
            done.set()

        thread = threading.Thread(target=checkpoint)
        thread.start()
        assert not done.wait(0.5)
        fcntl.flock(held, fcntl.LOCK_UN)
        assert done.wait(5)
        thread.join()
    finally:
        os.close(held)


def test_a_checkpoint_copies_committed_pages_before_it_waits_for_the_turn(
    tmp_path: Path,
) -> None:
    # No thread of its own and 2 MiB below SQLite's automatic threshold: only
    # this checkpoint can bring the pages to the database file.
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    assert isinstance(store, SqliteStore)
    with store.transaction() as tx:
        tx.execute("CREATE TABLE blob (n INTEGER PRIMARY KEY, data BLOB)")
    _write(store, 0, 2)
    assert _size(store.path) < MIB
    held = os.open(f"{store.path}-writer.lock", os.O_RDWR)
    done = threading.Event()
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        thread = threading.Thread(target=lambda: (store.checkpoint(), done.set()))
        thread.start()
        # The pages are in the database file while the turn is still held.
        assert wait_for(lambda: _size(store.path) >= 2 * MIB, timeout=10, interval=0.02)
        assert not done.is_set()
        fcntl.flock(held, fcntl.LOCK_UN)
        assert done.wait(5)
        thread.join()
    finally:
        os.close(held)
        store.close()


def test_a_checkpoint_reports_the_wal_pages_it_copied(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    assert isinstance(store, SqliteStore)
    with store.transaction() as tx:
        tx.execute("CREATE TABLE blob (n INTEGER PRIMARY KEY, data BLOB)")
    _write(store, 0, 1)
    in_wal, copied = store.checkpoint()
    store.close()
    assert in_wal >= 256
    assert copied == in_wal


def test_closing_the_store_stops_its_checkpoint_thread(store: SqliteStore) -> None:
    _write(store, 0, 1)
    store.close()
    assert not [t for t in threading.enumerate() if t.name == "sqlite-checkpoints"]
