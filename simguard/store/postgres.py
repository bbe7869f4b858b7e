"""PostgreSQL behind the same interface as SQLite (psycopg 3)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from simguard.store import Params, StoreConflict, Tx
from simguard.store.registrations import RegistrationLoader, RowsLoader

UNIQUE_VIOLATION = "23505"


def _to_pyformat(sql: str) -> str:
    # The shared SQL uses SQLite's `?`; none of it contains literal `?` or `%`.
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTx:
    dialect = "postgresql"

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection
        self._held: set[str] = set()

    def execute(self, sql: str, params: Params = ()) -> None:
        self._connection.execute(_to_pyformat(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(_to_pyformat(sql), list(rows))

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Params]) -> None:
        # COPY: one statement for all the rows, where executemany binds and
        # executes each row on its own (measured: the ledger's write was a
        # tenth of the worker's CPU on PostgreSQL).
        statement = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
        with self._connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._connection.execute(_to_pyformat(sql), params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(_to_pyformat(sql), params).fetchall())

    def lock(self, name: str) -> None:
        # Held until the transaction ends; serialises a holder's or dealer's
        # rows across every worker without locking whole tables.
        if name in self._held:
            return
        self._connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))
        self._held.add(name)

    def lock_all(self, names: Iterable[str]) -> None:
        """Take the locks in the order of their keys, the one order every
        transaction follows: two transactions that each took their names in
        the order they met them could each wait for the other (a deadlock)."""
        wanted = sorted(set(names) - self._held)
        if not wanted:
            return
        # One statement for all of them: PostgreSQL evaluates a volatile
        # function of the output list after ORDER BY has sorted the rows, so
        # the locks are taken in key order.
        self._connection.execute(
            "SELECT pg_advisory_xact_lock(key) FROM (SELECT DISTINCT hashtext(name) AS key "
            "FROM unnest(%s::text[]) AS name) AS keys ORDER BY key",
            (wanted,),
        ).fetchall()
        self._held.update(wanted)


class PostgresStore:
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()

    def _connection(self) -> psycopg.Connection[Any]:
        connection: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if connection is None or connection.closed:
            connection = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        connection = self._connection()
        try:
            with connection.transaction():
                yield _PostgresTx(connection)
        except psycopg.Error as exc:
            # SQLSTATE class 40 (transaction rollback: deadlock, serialisation
            # failure): the server chose this transaction to undo. 23505
            # (unique violation): another transaction committed the same row
            # first (two workers racing for one shard across a rebalance);
            # run again, this one reads that row and skips or is fenced.
            if exc.sqlstate is not None and (
                exc.sqlstate.startswith("40") or exc.sqlstate == UNIQUE_VIOLATION
            ):
                raise StoreConflict(str(exc).splitlines()[0]) from exc
            raise

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        connection = self._connection()
        with connection.transaction():
            yield _PostgresTx(connection)

    def ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()

    def registration_loader(self) -> RegistrationLoader:
        return RowsLoader()

    def close(self) -> None:
        connection: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
