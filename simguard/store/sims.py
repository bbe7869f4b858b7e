"""Table `sims`: each SIM's state as its worker keeps it, its shard, and its
last case record (with the record's status beside it, for counting)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from simguard.store import Tx
from simguard.store.in_lists import in_chunks
from simguard.store.registrations import CURRENT_COLUMNS

# (imsi, shard, case_status, case_record JSON or None, state JSON)
SimRow = tuple[str, int, str | None, str | None, str]


_REGISTRATION_COLUMNS = ", ".join(f"r.{name.strip()}" for name in CURRENT_COLUMNS.split(","))


def states_of(tx: Tx, imsis: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """(imsi, shard, state JSON, case record JSON or None, *registrations.CURRENT_COLUMNS)
    of those of `imsis` that have a state; the registration's columns are None
    when the SIM has none. Read together: every event of a SIM needs both."""
    for chunk, placeholders in in_chunks(imsis):
        yield from tx.fetchall(
            f"SELECT s.imsi, s.shard, s.state, s.case_record, {_REGISTRATION_COLUMNS} "
            "FROM sims s LEFT JOIN registrations r ON r.imsi = s.imsi "
            f"WHERE s.imsi IN ({placeholders})",
            chunk,
        )


def write_states(tx: Tx, rows: Sequence[SimRow]) -> None:
    if rows:
        tx.executemany(
            "INSERT INTO sims (imsi, shard, case_status, case_record, state) "
            "VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (imsi) DO UPDATE SET case_status = excluded.case_status, "
            "case_record = excluded.case_record, state = excluded.state",
            rows,
        )


def shard_of(tx: Tx, imsi: str) -> int | None:
    """The shard of the worker that holds the SIM's state; None if none does."""
    row = tx.fetchone("SELECT shard FROM sims WHERE imsi = ?", (imsi,))
    return None if row is None else int(row[0])


def count_flagged(tx: Tx) -> int:
    row = tx.fetchone("SELECT count(*) FROM sims WHERE case_status = 'flagged'")
    return int(row[0]) if row else 0


def case_record_of(tx: Tx, imsi: str) -> str | None:
    """The SIM's last case record (JSON); None if it has never been flagged."""
    row = tx.fetchone("SELECT case_record FROM sims WHERE imsi = ?", (imsi,))
    return None if row is None else row[0]
