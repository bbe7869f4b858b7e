"""Table `processed_events`: the idempotency ledger, kept in day buckets.

Each applied event is a row (day, event_key, content_hash): the UTC day the
worker applied it (days since the epoch, by the batch's clock), the first 16
bytes of SHA-256 of its `event_id` and the first 8 of SHA-256 of its content.
The primary key starts with the day, so a day's rows are one range of the
table and go together when the day leaves the retention window: the ledger's
size is bounded by `retention_days` days of events, whatever the history.

A lookup consults the buckets of the last `retention_days` days and today;
rows of older days that housekeeping has not removed yet are not consulted,
so what is recognised never depends on when housekeeping last ran.

SQLite keeps one WITHOUT ROWID table (about 34 bytes an event, measured by
`simguard bench --only storage`). PostgreSQL partitions the table by day
(`processed_events_day_<day>`), so a day leaves with DROP TABLE, not row by row;
a default partition takes rows of a day whose partition was not made ahead.

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


def consulted_days(today: int, retention_days: int) -> list[int]:
    """The buckets a lookup reads: the retention window, and tomorrow's (a
    worker whose clock runs a little ahead may already have written there)."""
    return list(range(today - retention_days, today + 2))


def content_hashes(
    tx: Tx, event_ids: Sequence[str], today: int, retention_days: int
) -> dict[str, bytes]:
    """event id -> content hash, for those of `event_ids` applied within the window."""
    by_key = {event_key(event_id): event_id for event_id in event_ids}
    days = consulted_days(today, retention_days)
    day_list = ",".join("?" * len(days))
    known: dict[str, bytes] = {}
    for chunk, placeholders in in_chunks(list(by_key)):
        for key, hashed in tx.fetchall(
            f"SELECT event_key, content_hash FROM {TABLE} "
            f"WHERE day IN ({day_list}) AND event_key IN ({placeholders})",
            (*days, *chunk),
        ):
            known[by_key[bytes(key)]] = bytes(hashed)
    return known


def record_applied(tx: Tx, hashes: Mapping[str, bytes], day: int) -> None:
    # No ON CONFLICT: two transactions applying one event at once (a fence
    # that failed) meet on the key, and the second is a StoreConflict that
    # runs again and then finds the first's row.
    if hashes:
        tx.executemany(
            f"INSERT INTO {TABLE} (day, event_key, content_hash) VALUES (?, ?, ?)",
            [(day, event_key(event_id), hashed) for event_id, hashed in hashes.items()],
        )


def prune_before(tx: Tx, cutoff_day: int, limit: int) -> int:
    """Remove at most `limit` rows of days before `cutoff_day` (on
    PostgreSQL, whole partitions first); how many rows went, or `limit` when
    a partition went and more may be left."""
    if tx.dialect == "postgresql":
        dropped = _drop_partitions_before(tx, cutoff_day)
        if dropped:
            return limit
    old = tx.fetchall(
        f"SELECT day, event_key FROM {TABLE} WHERE day < ? ORDER BY day LIMIT ?",
        (cutoff_day, limit),
    )
    tx.executemany(f"DELETE FROM {TABLE} WHERE day = ? AND event_key = ?", old)
    return len(old)


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
        tx.execute(
            f"CREATE TABLE {_partition_name(day)} PARTITION OF {TABLE} "
            f"FOR VALUES FROM ({int(day)}) TO ({int(day) + 1})"
        )


def count(tx: Tx) -> int:
    row = tx.fetchone(f"SELECT count(*) FROM {TABLE}")
    return int(row[0]) if row else 0


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
            f"CREATE TABLE {TABLE} (day integer NOT NULL, event_key bytea NOT NULL, "
            "content_hash bytea NOT NULL, PRIMARY KEY (day, event_key)) PARTITION BY RANGE (day)"
        )
        tx.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
    else:
        tx.execute(
            f"CREATE TABLE {TABLE} (day INTEGER NOT NULL, event_key BLOB NOT NULL, "
            "content_hash BLOB NOT NULL, PRIMARY KEY (day, event_key)) WITHOUT ROWID"
        )


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
    if tx.dialect == "postgresql":
        for day in sorted({day for day, _, _ in moved}):
            tx.execute(
                f"CREATE TABLE {_partition_name(day)} PARTITION OF {TABLE} "
                f"FOR VALUES FROM ({int(day)}) TO ({int(day) + 1})"
            )
    tx.executemany(
        f"INSERT INTO {TABLE} (day, event_key, content_hash) VALUES (?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        moved,
    )
    tx.execute(f"DROP TABLE {old}")


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


def _drop_partitions_before(tx: Tx, cutoff_day: int) -> int:
    expired = [day for day in _partition_days(tx) if day < cutoff_day]
    for day in expired:
        tx.execute(f"DROP TABLE {_partition_name(day)}")
    return len(expired)
