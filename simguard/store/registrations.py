"""Tables `registrations` (each SIM's current registration) and
`registration_events` (every registration event of each SIM), with the
registry import's bulk load into both."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from simguard.store import Tx
from simguard.store.in_lists import in_chunks

if TYPE_CHECKING:
    from simguard.store import SqliteStore

# registered_at, event_id, holder_ref, status, verification
EventRow = tuple[str, str, str, str, str]
# imsi, *EventRow
HistoryRow = tuple[str, str, str, str, str, str]
# event_id, holder_ref, status, verification, registered_at, holder_since,
# holder_since_event, revoked_since
CURRENT_COLUMNS = (
    "event_id, holder_ref, status, verification, registered_at, holder_since, "
    "holder_since_event, revoked_since, operator, holder_nationality"
)
# The registry import's rows: imsi, event_id, operator, iccid, msisdn, holder_ref,
# holder_nationality, verification, status, registered_at, holder_since.
ImportRow = tuple[str, str, str, str, str, str, str, str, str, str, str]
# As migration 0002 creates it.
HOLDER_INDEX = "registrations_active_by_holder"
HOLDER_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {HOLDER_INDEX} "
    "ON registrations (holder_ref) WHERE status = 'active'"
)
_UPSERT_CURRENT = (
    "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
    "holder_nationality, verification, status, registered_at, holder_since, "
    "holder_since_event, revoked_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (imsi) DO UPDATE SET event_id = excluded.event_id, "
    "operator = excluded.operator, iccid = excluded.iccid, msisdn = excluded.msisdn, "
    "holder_ref = excluded.holder_ref, holder_nationality = excluded.holder_nationality, "
    "verification = excluded.verification, status = excluded.status, "
    "registered_at = excluded.registered_at, holder_since = excluded.holder_since, "
    "holder_since_event = excluded.holder_since_event, revoked_since = excluded.revoked_since"
)


# --- the worker's reads and writes, a batch's worth at a time --------------------------
# The worker reads what a batch needs up front and writes what it changed at
# the end (workers/batch_unit.py): one statement for many SIMs or holders
# instead of one per event, which on PostgreSQL is a round trip each.
def add_events(tx: Tx, events: Sequence[HistoryRow]) -> None:
    """Adds (imsi, *EventRow) events to their SIMs' histories (a resend adds nothing)."""
    if events:
        tx.executemany(
            "INSERT INTO registration_events "
            "(imsi, registered_at, event_id, holder_ref, status, verification) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            events,
        )


def histories_of(tx: Tx, imsis: Sequence[str]) -> Iterator[HistoryRow]:
    """(imsi, *EventRow) of every event of `imsis`."""
    for chunk, placeholders in in_chunks(imsis):
        yield from tx.fetchall(
            "SELECT imsi, registered_at, event_id, holder_ref, status, verification "
            f"FROM registration_events WHERE imsi IN ({placeholders})",
            chunk,
        )


def set_currents(tx: Tx, rows: Sequence[tuple[Any, ...]]) -> None:
    """Writes SIMs' current registrations (rows of all 13 columns)."""
    if rows:
        tx.executemany(_UPSERT_CURRENT, rows)


def move_since(tx: Tx, moves: Sequence[tuple[str, str, str | None, str]]) -> None:
    """(holder_since, holder_since_event, revoked_since, imsi): what a late
    event older than the current one can move, when the SIM began with its
    holder and since when it has been revoked."""
    if moves:
        tx.executemany(
            "UPDATE registrations SET holder_since = ?, holder_since_event = ?, "
            "revoked_since = ? WHERE imsi = ?",
            moves,
        )


def current_rows(tx: Tx, imsis: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """(imsi, *CURRENT_COLUMNS) of those of `imsis` with a registration."""
    for chunk, placeholders in in_chunks(imsis):
        yield from tx.fetchall(
            f"SELECT imsi, {CURRENT_COLUMNS} FROM registrations WHERE imsi IN ({placeholders})",
            chunk,
        )


def registration_of(tx: Tx, imsi: str, columns: Sequence[str]) -> dict[str, Any] | None:
    """`columns` of the SIM's current registration; None if it has none."""
    row = tx.fetchone(f"SELECT {', '.join(columns)} FROM registrations WHERE imsi = ?", (imsi,))
    return None if row is None else dict(zip(columns, row, strict=True))


def active_of_holders(
    tx: Tx, holders: Sequence[str]
) -> Iterator[tuple[str, str, str, str, str, str]]:
    """(holder_ref, imsi, holder_since, holder_since_event, operator,
    holder_nationality) of the holders' active SIMs."""
    for chunk, placeholders in in_chunks(holders):
        yield from tx.fetchall(
            "SELECT holder_ref, imsi, holder_since, holder_since_event, operator, "
            "holder_nationality FROM registrations "
            f"WHERE holder_ref IN ({placeholders}) AND status = 'active'",
            chunk,
        )


def sims_of_holder(tx: Tx, holder_ref: str) -> list[str]:
    """The SIMs whose current registration is to the holder, whatever its status."""
    return [
        str(row[0])
        for row in tx.fetchall(
            "SELECT imsi FROM registrations WHERE holder_ref = ? ORDER BY imsi", (holder_ref,)
        )
    ]


def holders_with_more_than(tx: Tx, limit: int) -> set[str]:
    """Holders with more than `limit` active SIMs: one pass over the holder index."""
    return {
        row[0]
        for row in tx.fetchall(
            "SELECT holder_ref FROM registrations WHERE status = 'active' "
            "GROUP BY holder_ref HAVING count(*) > ?",
            (limit,),
        )
    }


def holders_with_more_at_one_operator(tx: Tx, limit: int) -> set[str]:
    """Holders with more than `limit` active SIMs with one operator."""
    return {
        row[0]
        for row in tx.fetchall(
            "SELECT holder_ref FROM registrations WHERE status = 'active' "
            "GROUP BY holder_ref, operator HAVING count(*) > ?",
            (limit,),
        )
    }


def history_without_rowid(tx: Tx) -> None:
    """Migration 7 on SQLite: the history table keyed by its primary key alone."""
    if tx.dialect == "postgresql":
        return
    tx.execute(
        "CREATE TABLE registration_events_keyed (imsi TEXT NOT NULL, registered_at TEXT NOT NULL, "
        "event_id TEXT NOT NULL, holder_ref TEXT NOT NULL, status TEXT NOT NULL, "
        "verification TEXT NOT NULL, PRIMARY KEY (imsi, registered_at, event_id)) WITHOUT ROWID"
    )
    columns = "imsi, registered_at, event_id, holder_ref, status, verification"
    tx.execute(
        f"INSERT INTO registration_events_keyed ({columns}) "
        f"SELECT {columns} FROM registration_events"
    )
    tx.execute("DROP TABLE registration_events")
    tx.execute("ALTER TABLE registration_events_keyed RENAME TO registration_events")


# --- the registry import ------------------------------------------------------------
def is_first_load(tx: Tx) -> bool:
    """No registration and no SIM state yet: a load before any traffic."""
    return (
        tx.fetchone("SELECT 1 FROM registrations LIMIT 1") is None
        and tx.fetchone("SELECT 1 FROM sims LIMIT 1") is None
    )


def drop_holder_index(tx: Tx) -> None:
    tx.execute(f"DROP INDEX IF EXISTS {HOLDER_INDEX}")


def build_holder_index(tx: Tx) -> None:
    tx.execute(HOLDER_INDEX_SQL)


class RegistrationLoader(Protocol):
    """Writes blocks of import rows: `stage` before the block's turn to write
    (another process may be writing meanwhile), `write` in its transaction.
    `write` gives the SIMs a worker already holds, with their shard."""

    def stage(self, rows: list[ImportRow]) -> None: ...
    def write(self, tx: Tx) -> list[tuple[str, int]]: ...


_INSERT_EVENT = (
    "INSERT INTO registration_events (imsi, registered_at, event_id, holder_ref, status, "
    "verification) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
# The later registration wins; a SIM kept by its holder keeps when it began
# with them, and one that stays revoked keeps since when it has been.
_UPSERT_IMPORTED = (
    "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
    "holder_nationality, verification, status, registered_at, holder_since, holder_since_event, "
    "revoked_since) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (imsi) DO UPDATE SET event_id = excluded.event_id, operator = excluded.operator, "
    "iccid = excluded.iccid, msisdn = excluded.msisdn, holder_ref = excluded.holder_ref, "
    "holder_nationality = excluded.holder_nationality, verification = excluded.verification, "
    "status = excluded.status, registered_at = excluded.registered_at, "
    "holder_since = CASE WHEN registrations.holder_ref = excluded.holder_ref "
    "THEN registrations.holder_since ELSE excluded.holder_since END, "
    "holder_since_event = CASE WHEN registrations.holder_ref = excluded.holder_ref "
    "THEN registrations.holder_since_event ELSE excluded.holder_since_event END, "
    "revoked_since = CASE WHEN excluded.status = 'active' THEN NULL "
    "WHEN registrations.status != 'active' THEN registrations.revoked_since "
    "ELSE excluded.registered_at END "
    "WHERE excluded.registered_at > registrations.registered_at "
    "OR (excluded.registered_at = registrations.registered_at "
    "AND excluded.event_id > registrations.event_id)"
)


def _revoked_since(row: ImportRow) -> str | None:
    """A new row's revoked_since: its own time unless it is active."""
    return None if row[8] == "active" else row[9]


class RowsLoader:
    """Binds each row in the block's transaction: PostgreSQL refuses an upsert
    that meets one key twice in one statement, which a block copied by one
    INSERT ... SELECT could."""

    def __init__(self) -> None:
        self._rows: list[ImportRow] = []

    def stage(self, rows: list[ImportRow]) -> None:
        self._rows = rows

    def write(self, tx: Tx) -> list[tuple[str, int]]:
        rows, self._rows = self._rows, []
        tx.executemany(_INSERT_EVENT, [(r[0], r[9], r[1], r[5], r[8], r[7]) for r in rows])
        tx.executemany(_UPSERT_IMPORTED, [(*r, r[1], _revoked_since(r)) for r in rows])
        known: list[tuple[str, int]] = []
        for imsis, placeholders in in_chunks([row[0] for row in rows]):
            known.extend(
                (imsi, int(shard))
                for imsi, shard in tx.fetchall(
                    f"SELECT imsi, shard FROM sims WHERE imsi IN ({placeholders})", imsis
                )
            )
        return known


# SQLite: the block's rows are bound once, into a table in memory (before the
# block's turn, while another process writes), and copied into both tables by
# SQLite itself; two executemany calls bound 18 values a row instead of 11
# (measured: ~12 -> ~9.5 us of CPU a row). In file order: rowid order is
# insertion order, so the later of two rows for a SIM is still applied last.
_BLOCK_TABLE = "temp.import_rows"
_CREATE_BLOCK_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {_BLOCK_TABLE} (imsi, event_id, operator, iccid, msisdn, "
    "holder_ref, holder_nationality, verification, status, registered_at, holder_since)"
)
_FILL_BLOCK_TABLE = f"INSERT INTO {_BLOCK_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_INSERT_EVENTS_FROM_BLOCK = (
    "INSERT INTO registration_events (imsi, registered_at, event_id, holder_ref, status, "
    "verification) SELECT imsi, registered_at, event_id, holder_ref, status, verification "
    f"FROM {_BLOCK_TABLE} WHERE true ON CONFLICT DO NOTHING"
)
# "WHERE true": SQLite's parser needs it between a SELECT and ON CONFLICT.
_UPSERT_FROM_BLOCK = _UPSERT_IMPORTED.replace(
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "SELECT imsi, event_id, operator, iccid, msisdn, holder_ref, holder_nationality, "
    "verification, status, registered_at, holder_since, event_id, "
    "CASE WHEN status = 'active' THEN NULL ELSE registered_at END "
    f"FROM {_BLOCK_TABLE} WHERE true",
)
_KNOWN_IN_BLOCK = f"SELECT imsi, shard FROM sims WHERE imsi IN (SELECT imsi FROM {_BLOCK_TABLE})"


class SqliteBlockLoader:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store
        with store.temporary() as tx:
            # The block table is rewritten for every block: no file for it.
            tx.execute("PRAGMA temp_store=MEMORY")

    def stage(self, rows: list[ImportRow]) -> None:
        with self._store.temporary() as tx:
            tx.execute(_CREATE_BLOCK_TABLE)
            tx.execute(f"DELETE FROM {_BLOCK_TABLE}")  # left by a block that failed
            tx.executemany(_FILL_BLOCK_TABLE, rows)

    def write(self, tx: Tx) -> list[tuple[str, int]]:
        tx.execute(_INSERT_EVENTS_FROM_BLOCK)
        tx.execute(_UPSERT_FROM_BLOCK)
        # No SIM state yet (a first load): none of the block's SIMs is known.
        no_sims = tx.fetchone("SELECT 1 FROM sims LIMIT 1") is None
        known = [] if no_sims else [(i, int(s)) for i, s in tx.fetchall(_KNOWN_IN_BLOCK)]
        tx.execute(f"DELETE FROM {_BLOCK_TABLE}")
        return known
