"""Table `processed_events`: the idempotency ledger, kept in day buckets.

Each applied event is a row (event_key, day, content_hash): the first 16
bytes of SHA-256 of its `event_id`, the UTC day the worker applied it (days
since the epoch, by the batch's clock) and the first 8 bytes of SHA-256 of
its content. Days leave the table once they are older than the retention
window, so its size is bounded by `retention_days` days of events, whatever
the history.

A lookup consults the last `retention_days` days, today and tomorrow; rows
of older days that housekeeping has not removed yet are not consulted, so
what is recognised never depends on when housekeeping last ran.

SQLite keeps one WITHOUT ROWID table keyed by (event_key, day), about 37
bytes an event (`simguard bench --only storage`): one B-tree probe per event
id, where a day-first key would cost one per day of the window in the
worker's own process. `processed_event_days` lists the days present, so
housekeeping knows without a scan whether a day has expired; it then walks
the table once in key order, a chunk per transaction. PostgreSQL partitions
the table by day (`processed_events_day_<day>`), so a day leaves with DROP
TABLE, and a lookup's probes of each day's index run in the server; a
default partition takes rows of a day whose partition was not made ahead.

16 bytes of event key: two different event ids collide with probability
about n²/2¹²⁹, below 10⁻¹⁸ for the 10¹⁰ events of a week at 20,000 a
second. 8 bytes of content hash: a conflicting resend passes for a duplicate
with probability 2⁻⁶⁴.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import date, datetime

from simguard.store import Tx
from simguard.store.in_lists import in_chunks

EPOCH = date(1970, 1, 1)
CONTENT_HASH_BYTES = 8
EVENT_KEY_BYTES = 16
# PostgreSQL partitions made ahead of the clock: a worker whose batch clock
# crosses midnight finds its day's partition there, never waits to make it.
DAYS_MADE_AHEAD = 2
TABLE = "processed_events"
DAYS_TABLE = "processed_event_days"
DEFAULT_PARTITION = "processed_events_default"
PARTITION_PREFIX = "processed_events_day_"


def event_key(event_id: str) -> bytes:
    return hashlib.sha256(event_id.encode()).digest()[:EVENT_KEY_BYTES]


def content_hash(canonical_content: bytes) -> bytes:
    return hashlib.sha256(canonical_content).digest()[:CONTENT_HASH_BYTES]


def day_of(at: datetime | str) -> int:
    """The ledger day of a time (a datetime, or RFC 3339 text as the store keeps times)."""
    on = at.date() if isinstance(at, datetime) else date.fromisoformat(at[:10])
    return (on - EPOCH).days


def consulted_days(today: int, retention_days: int) -> tuple[int, int]:
    """The first and last day a lookup reads: the retention window, and
    tomorrow (a worker whose clock runs a little ahead may already have
    written there)."""
    return today - retention_days, today + 1


def content_hashes(
    tx: Tx, event_ids: Sequence[str], today: int, retention_days: int
) -> dict[str, bytes]:
    """event id -> content hash, for those of `event_ids` applied within the window."""
    by_key = {event_key(event_id): event_id for event_id in event_ids}
    first, last = consulted_days(today, retention_days)
    known: dict[str, bytes] = {}
    for chunk, placeholders in in_chunks(list(by_key)):
        for key, hashed in tx.fetchall(
            f"SELECT event_key, content_hash FROM {TABLE} "
            f"WHERE event_key IN ({placeholders}) AND day BETWEEN ? AND ?",
            (*chunk, first, last),
        ):
            known[by_key[bytes(key)]] = bytes(hashed)
    return known


def record_applied(tx: Tx, hashes: Mapping[str, bytes], day: int) -> None:
    # No ON CONFLICT: two transactions applying one event at once (a fence
    # that failed) meet on the key, and the second is a StoreConflict that
    # runs again and then finds the first's row.
    if not hashes:
        return
    tx.insert_rows(
        TABLE,
        ("event_key", "day", "content_hash"),
        [(event_key(event_id), day, hashed) for event_id, hashed in hashes.items()],
    )
    if tx.dialect != "postgresql":
        tx.execute(f"INSERT INTO {DAYS_TABLE} (day) VALUES (?) ON CONFLICT DO NOTHING", (day,))


def expired_days(tx: Tx, cutoff_day: int) -> list[int]:
    """The days before `cutoff_day` the ledger still holds rows of."""
    if tx.dialect == "postgresql":
        days = {day for day in _partition_days(tx) if day < cutoff_day}
        days.update(
            int(day)
            for (day,) in tx.fetchall(
                f"SELECT DISTINCT day FROM {DEFAULT_PARTITION} WHERE day < ?", (cutoff_day,)
            )
        )
        return sorted(days)
    rows = tx.fetchall(f"SELECT day FROM {DAYS_TABLE} WHERE day < ?", (cutoff_day,))
    return [int(day) for (day,) in rows]


def prune_before(
    tx: Tx, cutoff_day: int, limit: int, after: bytes = b""
) -> tuple[int, bytes | None]:
    """Remove the rows of days before `cutoff_day` with keys after `after`,
    walking at most `limit` keys (on PostgreSQL: drop those days' partitions
    and clear the default one, all at once). (rows removed, the key to go on
    after in the next transaction, or None when the walk is done.)"""
    if tx.dialect == "postgresql":
        for day in _partition_days(tx):
            if day < cutoff_day:
                tx.execute(f"DROP TABLE {_partition_name(day)}")
        old = tx.fetchall(f"SELECT count(*) FROM {DEFAULT_PARTITION} WHERE day < ?", (cutoff_day,))
        tx.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE day < ?", (cutoff_day,))
        return int(old[0][0]) if old else 0, None
    walked = tx.fetchall(
        f"SELECT event_key, day FROM {TABLE} WHERE event_key > ? ORDER BY event_key LIMIT ?",
        (after, limit),
    )
    old = [(key, day) for key, day in walked if day < cutoff_day]
    tx.executemany(f"DELETE FROM {TABLE} WHERE event_key = ? AND day = ?", old)
    if len(walked) < limit:
        tx.execute(f"DELETE FROM {DAYS_TABLE} WHERE day < ?", (cutoff_day,))
        return len(old), None
    return len(old), bytes(walked[-1][0])


def prepare_days(tx: Tx, today: int) -> None:
    """Make PostgreSQL's partitions for today and the days just ahead (SQLite
    has nothing to make). Serialised: two workers creating one partition
    would otherwise collide in the catalogue."""
    if tx.dialect != "postgresql":
        return
    tx.lock("simguard.ledger-days")
    existing = set(_partition_days(tx))
    for day in range(today, today + DAYS_MADE_AHEAD + 1):
        if day in existing:
            continue
        # Rows of that day already in the default partition would make the
        # new partition's bounds overlap it; the day then stays there.
        if tx.fetchone(f"SELECT 1 FROM {DEFAULT_PARTITION} WHERE day = ? LIMIT 1", (day,)):
            continue
        _create_partition(tx, day)


def holds_all(tx: Tx, event_ids: Sequence[str]) -> set[str]:
    """Those of `event_ids` the ledger holds, in any bucket: what a soak run
    checks its acknowledged events against."""
    by_key = {event_key(event_id): event_id for event_id in event_ids}
    held: set[str] = set()
    for chunk, placeholders in in_chunks(list(by_key)):
        for (key,) in tx.fetchall(
            f"SELECT event_key FROM {TABLE} WHERE event_key IN ({placeholders})", chunk
        ):
            held.add(by_key[bytes(key)])
    return held


# --- the table itself (migration 6) ----------------------------------------------


def create_table(tx: Tx) -> None:
    if tx.dialect == "postgresql":
        tx.execute(
            f"CREATE TABLE {TABLE} (event_key bytea NOT NULL, day integer NOT NULL, "
            "content_hash bytea NOT NULL, PRIMARY KEY (event_key, day)) PARTITION BY RANGE (day)"
        )
        tx.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    else:
        tx.execute(
            f"CREATE TABLE {TABLE} (event_key BLOB NOT NULL, day INTEGER NOT NULL, "
            "content_hash BLOB NOT NULL, PRIMARY KEY (event_key, day)) WITHOUT ROWID"
        )
        tx.execute(f"CREATE TABLE {DAYS_TABLE} (day INTEGER PRIMARY KEY)")


def migrate_to_day_buckets(tx: Tx) -> None:
    """Migration 6: the ledger of event ids and hex hashes with a time index
    becomes day buckets of digests; every entry moves to its day."""
    old = f"{TABLE}_by_id"
    tx.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
    # PostgreSQL keeps index names across a rename; the new table wants them.
    tx.execute(f"DROP INDEX IF EXISTS {TABLE}_time")
    if tx.dialect == "postgresql":
        tx.execute(f"ALTER TABLE {old} DROP CONSTRAINT IF EXISTS {TABLE}_pkey")
    create_table(tx)
    rows = tx.fetchall(f"SELECT event_id, content_hash, processed_at FROM {old}")
    moved = [
        (day_of(processed_at), event_key(event_id), bytes.fromhex(hashed)[:CONTENT_HASH_BYTES])
        for event_id, hashed, processed_at in rows
    ]
    days = sorted({day for day, _, _ in moved})
    if tx.dialect == "postgresql":
        for day in days:
            _create_partition(tx, day)
    tx.executemany(
        f"INSERT INTO {TABLE} (event_key, day, content_hash) VALUES (?, ?, ?)",
        [(key, day, hashed) for day, key, hashed in moved],
    )
    if tx.dialect != "postgresql":
        tx.executemany(f"INSERT INTO {DAYS_TABLE} (day) VALUES (?)", [(day,) for day in days])
    tx.execute(f"DROP TABLE {old}")


def _create_partition(tx: Tx, day: int) -> None:
    tx.execute(
        f"CREATE TABLE {_partition_name(day)} PARTITION OF {TABLE} "
        f"FOR VALUES FROM ({int(day)}) TO ({int(day) + 1})"
    )


def _partition_name(day: int) -> str:
    return f"{PARTITION_PREFIX}{int(day)}"


def _partition_days(tx: Tx) -> list[int]:
    return [
        int(str(name).removeprefix(PARTITION_PREFIX))
        for (name,) in tx.fetchall(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = ?::regclass",
            (TABLE,),
        )
        if str(name).removeprefix(PARTITION_PREFIX).isdigit()
    ]
