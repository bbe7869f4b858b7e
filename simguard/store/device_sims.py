"""The `device_sims` table: which SIMs each handset was seen with, per UTC day."""

from __future__ import annotations

from collections.abc import Sequence

from simguard.store import Tx
from simguard.store.in_lists import in_chunks


def has(tx: Tx, device: int, day: int, imsi: str) -> bool:
    row = tx.fetchone(
        "SELECT 1 FROM device_sims WHERE device = ? AND day = ? AND imsi = ?",
        (device, day, imsi),
    )
    return row is not None


def add(tx: Tx, device: int, day: int, imsi: str) -> None:
    """Adds one sighting (a second one that day adds nothing)."""
    tx.execute(
        "INSERT INTO device_sims (device, day, imsi) VALUES (?, ?, ?) "
        "ON CONFLICT (device, day, imsi) DO NOTHING",
        (device, day, imsi),
    )


def between(tx: Tx, device: int, first_day: int, last_day: int) -> list[tuple[str, int, bool]]:
    """(imsi, day, in_group) of the handset's sightings from `first_day` to `last_day`."""
    return [
        (str(imsi), int(day), bool(in_group))
        for imsi, day, in_group in tx.fetchall(
            "SELECT imsi, day, in_group FROM device_sims "
            "WHERE device = ? AND day >= ? AND day <= ?",
            (device, first_day, last_day),
        )
    ]


def mark_in_group(tx: Tx, device: int, sightings: Sequence[tuple[str, int]]) -> None:
    tx.executemany(
        "UPDATE device_sims SET in_group = 1 WHERE device = ? AND imsi = ? AND day = ?",
        [(device, imsi, day) for imsi, day in sightings],
    )


def sims_in_group(tx: Tx, device: int, imsis: Sequence[str]) -> set[str]:
    """Those of `imsis` with a sighting in the handset marked as part of a group."""
    found: set[str] = set()
    for chunk, placeholders in in_chunks(imsis):
        rows = tx.fetchall(
            "SELECT DISTINCT imsi FROM device_sims "
            f"WHERE device = ? AND in_group = 1 AND imsi IN ({placeholders})",
            (device, *chunk),
        )
        found.update(str(row[0]) for row in rows)
    return found


def first_in_group(tx: Tx, imsi: str) -> tuple[int, int] | None:
    """(device, day) of the SIM's earliest sighting marked in a group."""
    row = tx.fetchone(
        "SELECT device, day FROM device_sims "
        "WHERE imsi = ? AND in_group = 1 ORDER BY day, device LIMIT 1",
        (imsi,),
    )
    return None if row is None else (int(row[0]), int(row[1]))


def prune_before(tx: Tx, cutoff_day: int, limit: int) -> int:
    """Delete at most `limit` sightings of days before `cutoff_day`; how many went."""
    old = tx.fetchall(
        "SELECT device, day, imsi FROM device_sims WHERE day < ? LIMIT ?", (cutoff_day, limit)
    )
    tx.executemany("DELETE FROM device_sims WHERE device = ? AND day = ? AND imsi = ?", old)
    return len(old)
