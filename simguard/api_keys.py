"""Operators' API keys. A key reads `sg_<key_id>_<secret>`; only a SHA-256 of
the whole key is stored, looked up by its public id and compared in constant
time. Several keys per operator may be active at once, which is how a key is
rotated: create the new one, move the clients, revoke the old one."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from simguard.settings import Settings
from simguard.store import Store, open_store

KEY_PREFIX = "sg_"


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    operator: str
    plmns: tuple[str, ...]
    created_at: str
    revoked_at: str | None


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _valid_plmn(plmn: str) -> bool:
    return plmn.isdigit() and len(plmn) in (5, 6)


def issue_key(store: Store, operator: str, extra_plmns: list[str] | None = None) -> tuple[str, str]:
    """Store a new key for `operator`; returns (key_id, the key shown once)."""
    plmns = [operator, *(p for p in extra_plmns or [] if p != operator)]
    bad = [p for p in plmns if not _valid_plmn(p)]
    if bad:
        raise ValueError(f"not a PLMN id (5-6 digits): {', '.join(bad)}")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO api_keys (key_id, key_hash, operator, plmns, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (key_id, _hash(key), operator, ",".join(plmns), _now()),
        )
    return key_id, key


def authenticate(store: Store, presented: str) -> ApiKey | None:
    """The active key matching `presented`, or None."""
    if not presented.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = presented.removeprefix(KEY_PREFIX).partition("_")
    if not key_id or not secret:
        return None
    with store.reading() as tx:
        row = tx.fetchone(
            "SELECT key_id, key_hash, operator, plmns, created_at, revoked_at "
            "FROM api_keys WHERE key_id = ?",
            (key_id,),
        )
    if row is None or row[5] is not None:
        return None
    if not hmac.compare_digest(row[1], _hash(presented)):
        return None
    return ApiKey(row[0], row[2], tuple(row[3].split(",")), row[4], row[5])


def list_api_keys(store: Store) -> list[ApiKey]:
    with store.reading() as tx:
        rows = tx.fetchall(
            "SELECT key_id, operator, plmns, created_at, revoked_at FROM api_keys "
            "ORDER BY created_at, key_id"
        )
    return [ApiKey(r[0], r[1], tuple(r[2].split(",")), r[3], r[4]) for r in rows]


def revoke(store: Store, key_id: str) -> bool:
    with store.transaction() as tx:
        row = tx.fetchone(
            "SELECT 1 FROM api_keys WHERE key_id = ? AND revoked_at IS NULL", (key_id,)
        )
        if row is None:
            return False
        tx.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", (_now(), key_id))
    return True


# The CLI's entry points open the configured store themselves.
def create_key(settings: Settings, operator: str, extra_plmns: list[str]) -> tuple[str, str]:
    return issue_key(open_store(settings.database_url), operator, extra_plmns)


def list_keys(settings: Settings) -> list[ApiKey]:
    return list_api_keys(open_store(settings.database_url))


def revoke_key(settings: Settings, key_id: str) -> bool:
    return revoke(open_store(settings.database_url), key_id)
