"""The `dealer_activations` table: each dealer's recent activations, per SIM."""

from __future__ import annotations

from collections.abc import Sequence

from simguard.store import Tx
from simguard.store.in_lists import in_chunks


def prune_older_than(tx: Tx, cutoff: str, limit: int) -> int:
    """Delete at most `limit` activations made before `cutoff`; how many went."""
    old = tx.fetchall(
        "SELECT dealer_key, imsi, activated_at FROM dealer_activations "
        "WHERE activated_at < ? LIMIT ?",
        (cutoff, limit),
    )
    tx.executemany(
        "DELETE FROM dealer_activations WHERE dealer_key = ? AND imsi = ? AND activated_at = ?",
        old,
    )
    return len(old)


def add(tx: Tx, dealer_key: str, imsi: str, activated_at: str) -> None:
    """Adds one activation (a resend adds nothing)."""
    tx.execute(
        "INSERT INTO dealer_activations (dealer_key, imsi, activated_at) VALUES (?, ?, ?) "
        "ON CONFLICT (dealer_key, imsi, activated_at) DO NOTHING",
        (dealer_key, imsi, activated_at),
    )


def between(tx: Tx, dealer_key: str, after: str, before: str) -> list[tuple[str, str, bool]]:
    """(imsi, activated_at, in_burst) of the dealer's activations strictly between the times."""
    return [
        (str(imsi), str(activated), bool(in_burst))
        for imsi, activated, in_burst in tx.fetchall(
            "SELECT imsi, activated_at, in_burst FROM dealer_activations "
            "WHERE dealer_key = ? AND activated_at > ? AND activated_at < ?",
            (dealer_key, after, before),
        )
    ]


def mark_in_burst(tx: Tx, dealer_key: str, activations: Sequence[tuple[str, str]]) -> None:
    """Marks (imsi, activated_at) activations of the dealer as part of a burst."""
    tx.executemany(
        "UPDATE dealer_activations SET in_burst = 1 "
        "WHERE dealer_key = ? AND imsi = ? AND activated_at = ?",
        [(dealer_key, imsi, at) for imsi, at in activations],
    )


def sims_in_burst(tx: Tx, dealer_key: str, imsis: Sequence[str]) -> set[str]:
    """Those of `imsis` with an activation of the dealer marked as part of a burst."""
    found: set[str] = set()
    for chunk, placeholders in in_chunks(imsis):
        rows = tx.fetchall(
            "SELECT DISTINCT imsi FROM dealer_activations "
            f"WHERE dealer_key = ? AND in_burst = 1 AND imsi IN ({placeholders})",
            (dealer_key, *chunk),
        )
        found.update(str(row[0]) for row in rows)
    return found


def first_in_burst(tx: Tx, imsi: str) -> tuple[str, str] | None:
    """(dealer_key, activated_at) of the SIM's earliest activation marked in a burst."""
    row = tx.fetchone(
        "SELECT dealer_key, activated_at FROM dealer_activations "
        "WHERE imsi = ? AND in_burst = 1 ORDER BY activated_at, dealer_key LIMIT 1",
        (imsi,),
    )
    return None if row is None else (str(row[0]), str(row[1]))
