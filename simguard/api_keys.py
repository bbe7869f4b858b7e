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
from simguard.store import api_keys as key_rows
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
        held = key_rows.plmns_held_by_others(tx, OPERATOR, operator)
        clash = _overlap(plmns, [(other, list(_plmns(theirs))) for other, theirs in held])
        if clash:
            raise ValueError(clash)
        key_rows.add(tx, key_id, _hash(key), operator, ",".join(plmns), now, expires_at, OPERATOR)
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
        key_rows.add(tx, key_id, _hash(key), name, "", now, expires_at, REGULATOR)
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
        found = key_rows.with_hash(tx, key_id)
    if found is None:
        return None
    key_hash, row = found
    if row[4] is not None:  # revoked
        return None
    if not hmac.compare_digest(key_hash, _hash(presented)):
        return None
    api_key = _api_key(row)
    return None if api_key.expired(datetime.now(UTC)) else api_key


def list_api_keys(store: Store) -> list[ApiKey]:
    with store.reading() as tx:
        rows = key_rows.all_keys(tx)
    return [_api_key(row) for row in rows]


def _api_key(row: key_rows.KeyRow) -> ApiKey:
    return ApiKey(row[0], row[1], _plmns(row[2]), row[3], row[4], row[5], row[6])


def _plmns(text: str) -> tuple[str, ...]:
    return tuple(plmn for plmn in text.split(",") if plmn)


def revoke(store: Store, key_id: str) -> bool:
    with store.transaction() as tx:
        return key_rows.revoke(tx, key_id, _now())


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
