"""What a ledger lookup costs the worker's process on SQLite, by the order of
the primary key: (day, event_key), which needs one B-tree probe per day of
the window, against (event_key, day), one probe per event id. In one
process, alternating rounds, on the same rows
(`python -m bench.ledger_lookup [ROWS_PER_DAY] [ROUNDS]`).

The probe set is what a batch asks: mostly new ids, a quarter resends.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROWS_PER_DAY = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 5
DAYS = 8  # a 7-day window and today
CHUNK = 500  # simguard.store.in_lists.IN_LIST_CHUNK
NEW_PROBES, RESENT_PROBES = 1_500, 500

LAYOUTS = {
    "(day, event_key)": (
        "CREATE TABLE t (day INTEGER, k BLOB, h BLOB, PRIMARY KEY (day, k)) WITHOUT ROWID",
        "SELECT k, h FROM t WHERE day IN ({days}) AND k IN ({keys})",
    ),
    "(event_key, day)": (
        "CREATE TABLE t (k BLOB, day INTEGER, h BLOB, PRIMARY KEY (k, day)) WITHOUT ROWID",
        "SELECT k, h FROM t WHERE k IN ({keys}) AND day BETWEEN ? AND ?",
    ),
}


def build(folder: Path) -> tuple[dict[str, sqlite3.Connection], list[bytes]]:
    rows = [
        (day, os.urandom(16), os.urandom(8)) for day in range(DAYS) for _ in range(ROWS_PER_DAY)
    ]
    connections: dict[str, sqlite3.Connection] = {}
    for name, (ddl, _) in LAYOUTS.items():
        connection = sqlite3.connect(folder / f"{len(connections)}.db")
        connection.execute(ddl)
        if name.startswith("(day"):
            connection.executemany("INSERT INTO t VALUES (?, ?, ?)", rows)
        else:
            connection.executemany(
                "INSERT INTO t VALUES (?, ?, ?)", [(k, d, h) for d, k, h in rows]
            )
        connection.commit()
        connections[name] = connection
    resent = [key for _, key, _ in rows[:: len(rows) // RESENT_PROBES]][:RESENT_PROBES]
    return connections, [os.urandom(16) for _ in range(NEW_PROBES)] + resent


def lookup_seconds(connection: sqlite3.Connection, query: str, probes: list[bytes]) -> float:
    days = list(range(DAYS + 1))
    started = time.process_time()
    for start in range(0, len(probes), CHUNK):
        chunk = probes[start : start + CHUNK]
        keys = ",".join("?" * len(chunk))
        if "BETWEEN" in query:
            params: tuple[object, ...] = (*chunk, days[0], days[-1])
        else:
            params = (*days, *chunk)
        sql = query.format(days=",".join("?" * len(days)), keys=keys)
        found = connection.execute(sql, params).fetchall()
        assert len(found) <= len(chunk)
    return time.process_time() - started


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        connections, probes = build(Path(folder))
        timings: dict[str, list[float]] = {name: [] for name in LAYOUTS}
        for _ in range(ROUNDS):
            for name, (_, query) in LAYOUTS.items():
                timings[name].append(lookup_seconds(connections[name], query, probes))
        for name, seconds in timings.items():
            per_key = statistics.median(seconds) / len(probes) * 1e6
            print(f"{name}: {per_key:.1f} µs a looked-up event id (median of {ROUNDS} rounds)")
        for connection in connections.values():
            connection.close()


if __name__ == "__main__":
    main()
