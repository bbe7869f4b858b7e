"""Table `api_keys`: each key's hash (never the key), its role, its
operator's PLMN ids, and when it was made, expires and was revoked."""

from __future__ import annotations

from typing import Any

from simguard.store import Tx

# key_id, operator, plmns, created_at, revoked_at, expires_at, role
KeyRow = tuple[Any, ...]


def plmns_held_by_others(tx: Tx, role: str, operator: str) -> list[tuple[str, str]]:
    """(operator, comma-separated PLMN ids) of the unrevoked `role` keys of other operators."""
    return [
        (str(row[0]), str(row[1]))
        for row in tx.fetchall(
            "SELECT operator, plmns FROM api_keys "
            "WHERE revoked_at IS NULL AND role = ? AND operator <> ?",
            (role, operator),
        )
    ]


def add(
    tx: Tx,
    key_id: str,
    key_hash: str,
    operator: str,
    plmns: str,
    created_at: str,
    expires_at: str | None,
    role: str,
) -> None:
    tx.execute(
        "INSERT INTO api_keys "
        "(key_id, key_hash, operator, plmns, created_at, expires_at, role) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (key_id, key_hash, operator, plmns, created_at, expires_at, role),
    )


def with_hash(tx: Tx, key_id: str) -> tuple[str, KeyRow] | None:
    """(key hash, KeyRow) of the key, revoked or not; None if there is none."""
    row = tx.fetchone(
        "SELECT key_hash, key_id, operator, plmns, created_at, revoked_at, expires_at, role "
        "FROM api_keys WHERE key_id = ?",
        (key_id,),
    )
    return None if row is None else (str(row[0]), tuple(row[1:]))


def all_keys(tx: Tx) -> list[KeyRow]:
    return [
        tuple(row)
        for row in tx.fetchall(
            "SELECT key_id, operator, plmns, created_at, revoked_at, expires_at, role "
            "FROM api_keys ORDER BY created_at, key_id"
        )
    ]


def revoke(tx: Tx, key_id: str, at: str) -> bool:
    """Revokes the key; False if there is no such unrevoked key."""
    if tx.fetchone("SELECT 1 FROM api_keys WHERE key_id = ? AND revoked_at IS NULL", (key_id,)):
        tx.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (at, key_id))
        return True
    return False
