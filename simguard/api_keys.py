"""Operators' API keys. A key reads `sg_<key_id>_<secret>`; only a SHA-256 of
the whole key is stored, looked up by its public id and compared in constant
time. Several keys per operator may be active at once, which is how a key is
rotated: create the new one, move the clients, revoke the old one. A key may
carry an expiry, after which it is refused like a revoked one.

Two operators' PLMN ids never overlap: an IMSI is an operator's when it
starts with its PLMN id, so with 31041 and 310410 held by different
operators, one operator's key could send for the other's SIMs."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from simguard.settings import Settings
from simguard.store import Store, open_store
from simguard.timefmt import from_text, to_text, utc_now

KEY_PREFIX = "sg_"
OPERATOR = "operator"
REGULATOR = "regulator"
_REGULATOR_NAME = re.compile(r"[a-z][a-z0-9-]{0,63}")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    operator: str
    plmns: tuple[str, ...]
    created_at: str
    revoked_at: str | None
    expires_at: str | None = None
    # OPERATOR or REGULATOR; a regulator key's `operator` is the regulator's name.
    role: str = "operator"

    @property
    def is_regulator(self) -> bool:
        return self.role == REGULATOR

    def expired(self, at: datetime) -> bool:
        # Parsed, not compared as text: keys made before the store's one
        # timestamp format have second-precision times.
        return self.expires_at is not None and from_text(self.expires_at) <= at


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _now() -> str:
    return to_text(utc_now())


def _valid_plmn(plmn: str) -> bool:
    return plmn.isdigit() and len(plmn) in (5, 6)


def issue_key(
    store: Store,
    operator: str,
    extra_plmns: list[str] | None = None,
    expires_in: timedelta | None = None,
) -> tuple[str, str]:
    """Store a new key for `operator`; returns (key_id, the key shown once)."""
    plmns = [operator, *(p for p in extra_plmns or [] if p != operator)]
    bad = [p for p in plmns if not _valid_plmn(p)]
    if bad:
        raise ValueError(f"not a PLMN id (5-6 digits): {', '.join(bad)}")
    key_id, key, now, expires_at = _new_key(expires_in)
    with store.transaction() as tx:
        held = tx.fetchall(
            "SELECT operator, plmns FROM api_keys "
            "WHERE revoked_at IS NULL AND role = ? AND operator <> ?",
            (OPERATOR, operator),
        )
        clash = _overlap(plmns, [(row[0], list(_plmns(row[1]))) for row in held])
        if clash:
            raise ValueError(clash)
        tx.execute(
            "INSERT INTO api_keys (key_id, key_hash, operator, plmns, created_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key_id, _hash(key), operator, ",".join(plmns), now, expires_at),
        )
    return key_id, key


def _new_key(expires_in: timedelta | None) -> tuple[str, str, str, str | None]:
    """(key_id, the key, its creation time, its expiry) for a new key."""
    if expires_in is not None and expires_in <= timedelta(0):
        raise ValueError("a key's lifetime must be positive")
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    now = datetime.now(UTC)
    return key_id, key, to_text(now), None if expires_in is None else to_text(now + expires_in)


_LIFETIME_UNITS = {"d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}


def parse_lifetime(text: str) -> timedelta:
    """`90d`, `12h` or `30m` as a timedelta."""
    number, unit = text[:-1], text[-1:]
    if unit not in _LIFETIME_UNITS or not number.isascii() or not number.isdigit():
        raise ValueError(f"lifetime {text!r} is not a number of days (d), hours (h) or minutes (m)")
    return int(number) * _LIFETIME_UNITS[unit]


def issue_regulator_key(
    store: Store, name: str, expires_in: timedelta | None = None
) -> tuple[str, str]:
    """A key for regulator `name` (e.g. "nbtc"): it reads any SIM, sends nothing."""
    if _REGULATOR_NAME.fullmatch(name) is None:
        raise ValueError(f"regulator name {name!r}: lower-case letters, digits and hyphens")
    key_id, key, now, expires_at = _new_key(expires_in)
    with store.transaction() as tx:
        tx.execute(
            "INSERT INTO api_keys "
            "(key_id, key_hash, operator, plmns, created_at, expires_at, role) "
            "VALUES (?, ?, ?, '', ?, ?, ?)",
            (key_id, _hash(key), name, now, expires_at, REGULATOR),
        )
    return key_id, key


def _overlap(plmns: list[str], held: list[tuple[str, list[str]]]) -> str:
    """Why `plmns` may not be given to one operator while others hold `held`."""
    for other, theirs in held:
        for mine in plmns:
            for their in theirs:
                if mine.startswith(their) or their.startswith(mine):
                    return (
                        f"PLMN id {mine} overlaps {their}, held by operator {other}: an IMSI "
                        "starting with both would be both operators'"
                    )
    return ""


def authenticate(store: Store, presented: str) -> ApiKey | None:
    """The active key matching `presented`, or None."""
    if not presented.startswith(KEY_PREFIX):
        return None
    key_id, _, secret = presented.removeprefix(KEY_PREFIX).partition("_")
    if not key_id or not secret:
        return None
    with store.reading() as tx:
        row = tx.fetchone(
            "SELECT key_id, key_hash, operator, plmns, created_at, revoked_at, expires_at, role "
            "FROM api_keys WHERE key_id = ?",
            (key_id,),
        )
    if row is None or row[5] is not None:
        return None
    if not hmac.compare_digest(row[1], _hash(presented)):
        return None
    api_key = ApiKey(row[0], row[2], _plmns(row[3]), row[4], row[5], row[6], row[7])
    return None if api_key.expired(datetime.now(UTC)) else api_key


def list_api_keys(store: Store) -> list[ApiKey]:
    with store.reading() as tx:
        rows = tx.fetchall(
            "SELECT key_id, operator, plmns, created_at, revoked_at, expires_at, role "
            "FROM api_keys ORDER BY created_at, key_id"
        )
    return [ApiKey(r[0], r[1], _plmns(r[2]), r[3], r[4], r[5], r[6]) for r in rows]


def _plmns(text: str) -> tuple[str, ...]:
    return tuple(plmn for plmn in text.split(",") if plmn)


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
def create_key(
    settings: Settings,
    operator: str,
    extra_plmns: list[str],
    expires_in: timedelta | None = None,
) -> tuple[str, str]:
    return issue_key(open_store(settings.database_url), operator, extra_plmns, expires_in)


def create_regulator_key(
    settings: Settings, name: str, expires_in: timedelta | None = None
) -> tuple[str, str]:
    return issue_regulator_key(open_store(settings.database_url), name, expires_in)


def list_keys(settings: Settings) -> list[ApiKey]:
    return list_api_keys(open_store(settings.database_url))


def revoke_key(settings: Settings, key_id: str) -> bool:
    return revoke(open_store(settings.database_url), key_id)
