"""The registry store: SQLite by default, PostgreSQL when the URL says so.

One small interface for both: `transaction()` yields a `Tx` with `execute`,
`executemany`, `fetchone`, `fetchall` (SQL with `?` placeholders),
`lock(name)`, which serialises work on one name (a holder, a dealer) across
processes, and `lock_all(names)`, which takes several in the one order every
transaction uses. Schema migrations run on open.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import sqlite3
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from simguard.timefmt import to_text, utc_now

if TYPE_CHECKING:
    from simguard.store.registrations import RegistrationLoader

Params = Sequence[Any]

log = logging.getLogger("simguard.store")

# Least time between two background checkpoints: each one syncs the WAL and
# the database file, and pages written again meanwhile are copied only once.
CHECKPOINT_INTERVAL_SECONDS = 0.5


class StoreConflict(Exception):
    """The store rolled the transaction back to end a conflict with another
    one (a deadlock, a serialisation failure): running it again is safe."""


class Tx(Protocol):
    # "sqlite" or "postgresql": for the store modules, where the two differ.
    dialect: str

    def execute(self, sql: str, params: Params = ()) -> None: ...
    def executemany(self, sql: str, rows: Iterable[Params]) -> None: ...
    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Params]) -> None:
        """Plain inserts of many rows (no ON CONFLICT: a duplicate key raises)."""
        ...

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None: ...
    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...
    def lock(self, name: str) -> None: ...
    def lock_all(self, names: Iterable[str]) -> None: ...


class Store(Protocol):
    dialect: str

    def transaction(self) -> Any: ...
    def reading(self) -> Any: ...
    def close(self) -> None: ...
    def ping(self) -> None: ...
    def registration_loader(self) -> RegistrationLoader:
        """The registry import's bulk load of registration rows, as this backend does it best."""
        ...


def open_store(url: str, migrate: bool = True, background_checkpoints: bool = False) -> Store:
    """The store at `url`. `background_checkpoints` (SQLite only) moves WAL
    checkpoints out of the writer's commits into a thread of their own: for a
    process whose commits are its critical path, the worker."""
    store: Store
    if url.startswith("sqlite:///"):
        store = SqliteStore(url.removeprefix("sqlite:///"), background_checkpoints)
    elif url.startswith(("postgresql://", "postgres://")):
        from simguard.store.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise ValueError(f"unsupported database URL scheme: {url.split(':', 1)[0]}")
    if migrate:
        apply_migrations(store)
    return store


def migrations() -> list[tuple[int, str]]:
    folder = resources.files("simguard.store").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"(\d+)_.*\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)


def apply_migrations(store: Store) -> None:
    with store.transaction() as tx:
        tx.lock("simguard.migrations")
        tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {row[0] for row in tx.fetchall("SELECT version FROM schema_migrations")}
        for version, sql in migrations():
            if version in done:
                continue
            for statement in _statements(sql):
                tx.execute(statement)
            if version in _AFTER_MIGRATION:
                _AFTER_MIGRATION[version](tx)
            tx.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                (version, to_text(utc_now())),
            )
        from simguard.store import ledger

        # Today's ledger partition before any worker writes into it.
        ledger.prepare_days(tx, ledger.day_of(utc_now()))


def _copy_case_records(tx: Tx) -> None:
    """Migration 5: the case record of each SIM ever flagged, out of its state
    (the only time the store reads the worker's JSON; SQLite and PostgreSQL
    spell JSON extraction differently, so it is done here, not in SQL)."""
    updates = []
    for imsi, state in tx.fetchall("SELECT imsi, state FROM sims WHERE case_status IS NOT NULL"):
        case = orjson.loads(state).get("case")
        if case:
            updates.append((orjson.dumps(case).decode(), imsi))
    if updates:
        tx.executemany("UPDATE sims SET case_record = ? WHERE imsi = ?", updates)


def _ledger_to_day_buckets(tx: Tx) -> None:
    from simguard.store import ledger

    ledger.migrate_to_day_buckets(tx)


def _history_without_rowid(tx: Tx) -> None:
    from simguard.store import registrations

    registrations.history_without_rowid(tx)


def _notice_feed(tx: Tx) -> None:
    from simguard.store import notices

    notices.create_feed(tx)


# Data a migration's DDL cannot move itself, moved in the same transaction,
# and tables whose DDL the two backends spell differently.
_AFTER_MIGRATION: dict[int, Callable[[Tx], None]] = {
    5: _copy_case_records,
    6: _ledger_to_day_buckets,
    7: _history_without_rowid,
    9: _notice_feed,
}


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
    return [s.strip() for s in without_comments.split(";") if s.strip()]


class _SqliteTx:
    dialect = "sqlite"

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Params = ()) -> None:
        self._connection.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Params]) -> None:
        self._connection.executemany(sql, rows)

    def insert_rows(self, table: str, columns: Sequence[str], rows: Iterable[Params]) -> None:
        placeholders = ", ".join("?" for _ in columns)
        self._connection.executemany(
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})", rows
        )

    def fetchone(self, sql: str, params: Params = ()) -> tuple[Any, ...] | None:
        row: tuple[Any, ...] | None = self._connection.execute(sql, params).fetchone()
        return row

    def fetchall(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return list(self._connection.execute(sql, params).fetchall())

    def lock(self, name: str) -> None:
        # BEGIN IMMEDIATE already holds SQLite's single writer lock.
        del name

    def lock_all(self, names: Iterable[str]) -> None:
        del names


@contextmanager
def _sqlite_transaction(connection: sqlite3.Connection, kind: str) -> Iterator[Tx]:
    """BEGIN `kind`; COMMIT when the block ends, ROLLBACK when it raises."""
    connection.execute(f"BEGIN {kind}")
    try:
        yield _SqliteTx(connection)
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _owner_only(path: Path) -> None:
    """The store holds holder references, MSISDNs and key hashes: readable by
    its owner only. SQLite gives the -wal and -shm files the database file's
    mode; files of an older store made with a wider one are narrowed."""
    # Opened only when it does not exist yet: closing any descriptor of a file
    # drops the POSIX locks this process's SQLite connections hold on it.
    if not path.exists():
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode & 0o077:
                file.chmod(mode & 0o700)


class SqliteStore:
    """One file in WAL mode so the API reads while the worker writes.

    synchronous=NORMAL in WAL mode survives a killed process (the case the
    worker's guarantees are about); only an OS crash can lose the last commits.
    """

    dialect = "sqlite"

    def __init__(self, path: str, background_checkpoints: bool = False) -> None:
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            _owner_only(Path(path))
        self._local = threading.local()
        self._checkpoints = (
            _BackgroundCheckpoints(self) if background_checkpoints and path != ":memory:" else None
        )

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            connection.execute("PRAGMA busy_timeout=30000")
            connection.execute("PRAGMA cache_size=-65536")
            if self._checkpoints is not None:
                connection.execute("PRAGMA wal_autocheckpoint=0")
            self._local.connection = connection
        return connection

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._writer_turn(), _sqlite_transaction(self._connection(), "IMMEDIATE") as tx:
            yield tx
        if self._checkpoints is not None:
            self._checkpoints.wanted()

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL's pages into the database file: (pages in the WAL,
        pages copied).

        Twice: first beside the writers, which may append meanwhile, then in
        the writer's turn for what they appended, so that the checkpoint
        completes and the next commit starts the WAL file over instead of
        growing it. The turn is held only for that remainder.
        """
        connection = self._connection()
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        with self._writer_turn():
            row = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(row[1]), int(row[2])

    @contextmanager
    def _writer_turn(self) -> Iterator[None]:
        """Wait for SQLite's single writer slot on a file lock first.

        SQLite's own busy handler polls with sleeps of up to 100 ms, so two
        writers (two worker processes, a worker and an import) leave the slot
        idle between them; flock wakes the next one as soon as it is free.
        """
        if self.path == ":memory:":
            yield
            return
        lock_file: int | None = getattr(self._local, "lock_file", None)
        if lock_file is None:
            lock_file = os.open(f"{self.path}-writer.lock", os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_file = lock_file
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)

    @contextmanager
    def reading(self) -> Iterator[Tx]:
        """A read-only transaction: in WAL mode it never waits for the writer."""
        connection = self._connection()
        connection.execute("BEGIN DEFERRED")
        try:
            yield _SqliteTx(connection)
        finally:
            connection.execute("COMMIT")

    @contextmanager
    def temporary(self) -> Iterator[Tx]:
        """A transaction for this connection's temporary tables only.

        Nothing but this connection sees them, so SQLite takes no lock on the
        database for it: it runs while another process holds the writer slot.
        """
        with _sqlite_transaction(self._connection(), "DEFERRED") as tx:
            yield tx

    def ping(self) -> None:
        self._connection().execute("SELECT 1").fetchone()

    def registration_loader(self) -> RegistrationLoader:
        from simguard.store.registrations import SqliteBlockLoader

        return SqliteBlockLoader(self)

    def close(self) -> None:
        if self._checkpoints is not None:
            self._checkpoints.stop()
        self._close_own()

    def _close_own(self) -> None:
        """Close the calling thread's connection and lock file."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
        lock_file: int | None = getattr(self._local, "lock_file", None)
        if lock_file is not None:
            os.close(lock_file)
            self._local.lock_file = None


class _BackgroundCheckpoints:
    """Checkpoints a store's WAL from a thread of its own after its commits.

    SQLite's automatic checkpoint runs inside the COMMIT that crosses its
    threshold: the committing thread copies the pages and syncs two files
    while it holds the writer slot. Here that work waits for the writer's turn
    like any other writer and overlaps what the committing thread does next
    (the worker's Kafka transaction, its next poll); sqlite3 releases the GIL
    while it copies.
    """

    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def wanted(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._stopping.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="sqlite-checkpoints", daemon=True
                )
                self._thread.start()
        self._wanted.set()

    def stop(self) -> None:
        """Stop the thread; a checkpoint under way finishes first."""
        with self._start_lock:
            self._stopping.set()
            thread = self._thread
        self._wanted.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _run(self) -> None:
        try:
            while True:
                self._wanted.wait()
                self._wanted.clear()
                try:
                    self._store.checkpoint()
                except sqlite3.Error as exc:
                    # The next commit asks again; meanwhile the WAL only grows.
                    log.warning("background checkpoint failed: %s", exc)
                if self._stopping.is_set():
                    return
                self._stopping.wait(CHECKPOINT_INTERVAL_SECONDS)
        finally:
            self._store._close_own()
