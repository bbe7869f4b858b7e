"""SQLite store transactions: what each kind commits, undoes and waits for."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from simguard.store import SqliteStore, open_store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    assert isinstance(opened, SqliteStore)
    yield opened
    opened.close()


def test_a_transaction_that_raises_leaves_nothing_written(store: SqliteStore) -> None:
    with store.transaction() as tx:
        tx.execute("CREATE TABLE t (a)")
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.execute("INSERT INTO t VALUES (1)")
        raise RuntimeError("undo")
    with store.reading() as tx:
        assert tx.fetchall("SELECT a FROM t") == []


def test_temporary_tables_are_written_while_another_connection_holds_the_writer_slot(
    store: SqliteStore, tmp_path: Path
) -> None:
    other = open_store(f"sqlite:///{tmp_path / 'store.db'}", migrate=False)
    assert isinstance(other, SqliteStore)
    filled = threading.Event()

    def fill_temporary_table() -> None:
        with other.temporary() as tx:
            tx.execute("CREATE TEMP TABLE block (a)")
            tx.executemany("INSERT INTO temp.block VALUES (?)", [(1,), (2,)])
        filled.set()
        other.close()

    with store.transaction() as tx:
        tx.execute("CREATE TABLE t (a)")
        worker = threading.Thread(target=fill_temporary_table)
        worker.start()
        # Within the writer's transaction: the other connection did not wait for it.
        assert filled.wait(timeout=5)
    worker.join()
    assert filled.is_set()


def test_a_temporary_transaction_that_raises_leaves_its_table_as_before(
    store: SqliteStore,
) -> None:
    with store.temporary() as tx:
        tx.execute("CREATE TEMP TABLE block (a)")
        tx.execute("INSERT INTO temp.block VALUES (1)")
    with pytest.raises(RuntimeError), store.temporary() as tx:
        tx.execute("DELETE FROM temp.block")
        raise RuntimeError("undo")
    with store.temporary() as tx:
        assert tx.fetchall("SELECT a FROM temp.block") == [(1,)]
