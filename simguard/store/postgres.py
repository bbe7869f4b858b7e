"""PostgreSQL behind the same interface as SQLite (psycopg 3)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from simguard.store import Params, Tx


def _to_pyformat(sql: str) -> str:
    # The shared SQL uses SQLite's `?`; none of it contains literal `?` or `%`.
    return sql.replace("%", "%%").replace("?", "%s")


class _PostgresTx:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> None:
        self._connection.execute(_to_pyformat(sql), params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        with self._connection.cursor() as cursor:
            cursor.executemany(_to_pyformat(sql), list(rows))

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._connection.execute(_to_pyformat(sql), params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(_to_pyformat(sql), params).fetchall())

    def lock(self, name: str) -> None:
        # Held until the transaction ends; serialises a holder's or dealer's
        # rows across every worker without locking whole tables.
        self._connection.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (name,))


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
        with connection.transaction():
            yield _PostgresTx(connection)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        connection = self._connection()
        with connection.transaction():
            yield _PostgresTx(connection)

    def ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()

    def close(self) -> None:
        connection: psycopg.Connection[Any] | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
