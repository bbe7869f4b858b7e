"""Tables `notices` (each SIM's current operator notice) and `notice_feed`
(every version of every notice, in the order operators read them).

The feed's cursor is (txid, seq). On SQLite, one writer at a time, the
sequence alone is commit order. On PostgreSQL workers write at once, and a
transaction may commit after a later one took a higher sequence number; a
reader that skipped past its rows would never see them. So each row carries
its writing transaction's id, a reader sees only the rows of transactions
older than every one still running (`pg_snapshot_xmin`), in (txid, seq)
order, and no row can later appear before its cursor: a transaction that
starts now gets a larger id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import orjson

from simguard.store import Tx

FEED_COLUMNS = ("notice_id", "notice_version", "imsi", "operator", "status", "issued_at", "notice")
# notice_id, notice_version, imsi, operator, status, issued_at, notice JSON
FeedRow = tuple[str, int, str, str, str, str, str]
# imsi, operator, status, deadline, notice JSON
CurrentRow = tuple[str, str, str, str, str]
CURSOR_PATTERN: Final = r"^[0-9]{1,19}\.[0-9]{1,19}$"
_CURSOR = re.compile(CURSOR_PATTERN)
START: Final = "0.0"


def create_feed(tx: Tx) -> None:
    """Migration 9: the feed table, in each backend's spelling."""
    if tx.dialect == "postgresql":
        tx.execute(
            "CREATE TABLE IF NOT EXISTS notice_feed ("
            "seq BIGSERIAL PRIMARY KEY, "
            "txid BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint), "
            "notice_id TEXT NOT NULL, notice_version INTEGER NOT NULL, imsi TEXT NOT NULL, "
            "operator TEXT NOT NULL, status TEXT NOT NULL, issued_at TEXT NOT NULL, "
            "notice TEXT NOT NULL)"
        )
    else:
        tx.execute(
            "CREATE TABLE IF NOT EXISTS notice_feed ("
            "seq INTEGER PRIMARY KEY AUTOINCREMENT, txid INTEGER NOT NULL DEFAULT 0, "
            "notice_id TEXT NOT NULL, notice_version INTEGER NOT NULL, imsi TEXT NOT NULL, "
            "operator TEXT NOT NULL, status TEXT NOT NULL, issued_at TEXT NOT NULL, "
            "notice TEXT NOT NULL)"
        )
    tx.execute(
        "CREATE INDEX IF NOT EXISTS notice_feed_by_operator ON notice_feed (operator, txid, seq)"
    )
    tx.execute("CREATE INDEX IF NOT EXISTS notice_feed_in_order ON notice_feed (txid, seq)")
    tx.execute("CREATE INDEX IF NOT EXISTS notice_feed_by_issue ON notice_feed (issued_at)")


def record(tx: Tx, current: Sequence[CurrentRow], feed: Sequence[FeedRow]) -> None:
    if current:
        tx.executemany(
            "INSERT INTO notices (imsi, operator, status, deadline, notice) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (imsi) DO UPDATE SET "
            "operator = excluded.operator, status = excluded.status, "
            "deadline = excluded.deadline, notice = excluded.notice",
            current,
        )
    if feed:
        tx.insert_rows("notice_feed", FEED_COLUMNS, feed)


def valid_cursor(cursor: str) -> bool:
    return _CURSOR.fullmatch(cursor) is not None


def feed_after(
    tx: Tx, operators: Sequence[str] | None, cursor: str, limit: int
) -> list[tuple[str, str]]:
    """(cursor of the row, notice JSON) of the notices after `cursor`, oldest
    first: of `operators` (PLMN ids), or of every operator when None."""
    if operators is not None and not operators:
        return []
    txid, seq = (int(part) for part in cursor.split("."))
    of_operators = ""
    if operators is not None:
        of_operators = f"operator IN ({','.join('?' for _ in operators)}) AND "
    settled = ""
    if tx.dialect == "postgresql":
        settled = "AND txid < pg_snapshot_xmin(pg_current_snapshot())::text::bigint "
    rows = tx.fetchall(
        f"SELECT txid, seq, notice FROM notice_feed WHERE {of_operators}"
        f"(txid > ? OR (txid = ? AND seq > ?)) {settled}"
        "ORDER BY txid, seq LIMIT ?",
        (*(operators or ()), txid, txid, seq, limit),
    )
    return [(f"{row[0]}.{row[1]}", str(row[2])) for row in rows]


def pending_counts(tx: Tx) -> list[tuple[str, str, int]]:
    """(operator, status, count) of the notices open or overdue now."""
    return [
        (str(operator), str(status), int(count))
        for operator, status, count in tx.fetchall(
            "SELECT operator, status, count(*) FROM notices "
            "WHERE status IN ('open', 'overdue') GROUP BY operator, status"
        )
    ]


def issued_since(tx: Tx, since: str) -> list[dict[str, Any]]:
    """The latest version of every notice issued at or after `since` (JSON-decoded)."""
    rows = tx.fetchall(
        "SELECT f.notice FROM notice_feed f JOIN ("
        "SELECT notice_id, max(notice_version) AS latest FROM notice_feed "
        "WHERE issued_at >= ? GROUP BY notice_id"
        ") l ON l.notice_id = f.notice_id AND l.latest = f.notice_version "
        "ORDER BY f.issued_at, f.notice_id",
        (since,),
    )
    return [orjson.loads(row[0]) for row in rows]
