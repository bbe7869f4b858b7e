"""Table `sims`: each SIM's state as its worker keeps it, its shard, and its
last case record (with the record's status beside it, for counting)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from simguard.store import Tx
from simguard.store.in_lists import in_chunks

# (imsi, shard, case_status, case_record JSON or None, state JSON)
SimRow = tuple[str, int, str | None, str | None, str]


def states_of(
    tx: Tx, imsis: Sequence[str]
) -> Iterator[tuple[str, bytes | str, bytes | str | None]]:
    """(imsi, state JSON, case record JSON or None) of those of `imsis` that have a state."""
    for chunk, placeholders in in_chunks(imsis):
        yield from tx.fetchall(
            f"SELECT imsi, state, case_record FROM sims WHERE imsi IN ({placeholders})", chunk
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
