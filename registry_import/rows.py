"""One registry CSV row checked and pseudonymised without marshmallow.

The import used to load every row through `RegistrationRequestSchema`, which
costs ~400 us a row; this checker applies the schema's own field contracts
and object rules (schemas/contract.py) in the schema's order and gives the
same verdict, and for a refused row the same reason (the first field the
schema would report), in a few microseconds.
tests/test_registry_rows.py holds it to the schema on generated rows, valid
and broken. The values it writes are the schema's too: the canonical event
id, the normalised number's holder reference, the stored time text.
"""

from __future__ import annotations

import functools
import hashlib
import re
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from operator import itemgetter
from typing import Final

from marshmallow import ValidationError

from schemas import identifiers as ids
from schemas.events import (
    ID_NUMBER,
    ID_NUMBER_MAX_CHARS,
    ID_TYPES,
    IMSI_OF_OPERATOR,
    MAX_FUTURE_SKEW,
    REGISTRATION_STATUSES,
    VERIFICATIONS,
    UtcDateTime,
    canonical_uuid,
    is_valid_holder_number,
)
from schemas.pseudonym import keyed_by
from simguard.timefmt import to_text

COLUMNS: Final = (
    "imsi", "iccid", "msisdn", "operator", "id_type", "id_number", "nationality",
    "verification", "registered_at", "status",
)  # fmt: skip
IMPORT_NAMESPACE: Final = uuid.UUID("6f3f0a52-8d7e-4b6e-9a57-1d8c3c2b9e10")

# imsi, event_id, operator, iccid, msisdn, holder_ref, holder_nationality,
# verification, status, registered_at, holder_since
Row = tuple[str, str, str, str, str, str, str, str, str, str, str]

_VERIFICATIONS = frozenset(VERIFICATIONS)
_STATUSES = frozenset(REGISTRATION_STATUSES)
_ID_TYPES = frozenset(ID_TYPES)
# The spellings most rows use, whose stored form needs no parsing: a time in
# whole seconds with Z, a holder number already in normal form. The registry
# block applies the same patterns as column regexes.
PLAIN_UTC_SECOND_PATTERN: Final = "^[1-9][0-9]{3}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
PLAIN_ID_NUMBER_PATTERN: Final = f"^[A-Z0-9]{{1,{ID_NUMBER_MAX_CHARS}}}$"
_PLAIN_UTC_SECOND = re.compile(PLAIN_UTC_SECOND_PATTERN)
_PLAIN_ID_NUMBER = re.compile(PLAIN_ID_NUMBER_PATTERN)
_REGISTERED_AT_FIELD = UtcDateTime(required=True, max_future=MAX_FUTURE_SKEW)


class RowChecker:
    """Checks rows laid out as the CSV header says; one per process and file."""

    def __init__(self, secret: str, header: Sequence[str]) -> None:
        self._keyed = keyed_by(secret)
        # csv.DictReader keeps the last of repeated column names.
        position = {name: index for index, name in enumerate(header)}
        self._columns = [position[name] for name in COLUMNS]
        self._width = max(self._columns) + 1
        self._pick = itemgetter(*self._columns)
        self._event_id_column = position.get("event_id")
        self._future_limit = ""
        self._refresh_future_limit()

    def check(self, values: Sequence[str]) -> Row | str:
        """The row to store, or the reason it is refused (field names only)."""
        width = len(values)
        # csv.DictReader gives None for the columns a short record lacks.
        picked = (
            self._pick(values)
            if width >= self._width
            else tuple(values[index] if index < width else None for index in self._columns)
        )
        imsi, iccid, msisdn, operator, id_type, id_number, nationality, verification, at, status = (
            picked
        )
        event_column = self._event_id_column
        given_event_id = (
            values[event_column] if event_column is not None and event_column < width else None
        )
        # Field order of RegistrationRequestSchema: event_id, operator, imsi,
        # iccid, msisdn, holder, verification, registered_at, status; then the
        # schema-level checks on imsi and msisdn.
        if given_event_id:
            event_id = canonical_event_id(given_event_id)
            if event_id is None:
                return "invalid event_id"
        else:
            event_id = import_event_id(f"{imsi}|{at}|{status}")
        if operator is None or not ids.OPERATOR.accepts(operator):
            return "invalid operator"
        if imsi is None or not ids.IMSI.accepts(imsi):
            return "invalid imsi"
        if iccid is None or not ids.ICCID.accepts(iccid):
            return "invalid iccid"
        if msisdn is None:
            return "invalid msisdn"
        # The operator's country is known (checked above): MSISDN.accepts and
        # the schema's rule on the operator's country, at once.
        msisdn_valid, msisdn_in_country = ids.msisdn_verdicts(msisdn, _operator_country(operator))
        if not msisdn_valid:
            return "invalid msisdn"
        normalised_or_error = _normalised_holder_number(id_type, id_number, nationality)
        if normalised_or_error[0] == _REFUSED:
            return normalised_or_error[1]
        if verification not in _VERIFICATIONS:
            return "invalid verification"
        registered_at = self._registered_at_text(at)
        if registered_at is None:
            return "invalid registered_at"
        if status not in _STATUSES:
            return "invalid status"
        assert operator is not None and imsi is not None and iccid is not None
        assert msisdn is not None and id_type is not None and id_number is not None
        assert nationality is not None and verification is not None and status is not None
        if not IMSI_OF_OPERATOR.holds({"imsi": imsi, "operator": operator}):
            return "invalid imsi"
        if not msisdn_in_country:
            return "invalid msisdn"
        return (
            imsi,
            event_id,
            operator,
            iccid,
            msisdn,
            self._holder_ref(id_type, nationality, normalised_or_error[1]),
            nationality,
            verification,
            status,
            registered_at,
            registered_at,
        )

    def _holder_ref(self, id_type: str, nationality: str, normalised_number: str) -> str:
        # schemas.pseudonym.holder_ref, without normalising twice.
        return self._keyed.hexdigest(f"{id_type}:{nationality}:{normalised_number}".encode())

    def _registered_at_text(self, value: str | None) -> str | None:
        if value is None:
            return None
        if _PLAIN_UTC_SECOND.fullmatch(value) is not None:
            # The common spelling: the stored text is the value itself, once
            # datetime agrees that the date and time exist.
            try:
                datetime.fromisoformat(value[:19])
            except ValueError:
                return None
            text = value[:19] + ".000000Z"
        else:
            try:
                moment = _REGISTERED_AT_FIELD._parse(value)
            except ValidationError:
                return None
            text = to_text(moment)
            if not text[0].isdigit() or len(text) != len("2026-01-01T00:00:00.000000Z"):
                # Years before 1000: compare as times, not as text.
                return None if moment - _now() > MAX_FUTURE_SKEW else text
        if text > self._future_limit:
            # The limit is taken once per chunk; a refusal is re-judged on the
            # clock of the moment, as the schema does for every row.
            self._refresh_future_limit()
            if text > self._future_limit:
                return None
        return text

    @property
    def future_limit(self) -> str:
        """The latest stored `registered_at` text accepted now (taken per block)."""
        return self._future_limit

    def _refresh_future_limit(self) -> None:
        self._future_limit = to_text(_now() + MAX_FUTURE_SKEW)


def _now() -> datetime:
    return _REGISTERED_AT_FIELD._now()


_REFUSED = 0
_NORMALISED = 1


def _normalised_holder_number(
    id_type: str | None, id_number: str | None, nationality: str | None
) -> tuple[int, str]:
    """(_NORMALISED, the number as hashed) or (_REFUSED, the reason).

    HolderSchema's order: id_type, id_number, nationality, then the Thai check
    digit. The API hashes the normalised number after normalising it again in
    holder_ref; normalising is idempotent on ASCII, and done twice otherwise.
    """
    if id_type not in _ID_TYPES:
        return _REFUSED, "invalid holder/id_type"
    if id_number is None:
        return _REFUSED, "invalid holder/id_number"
    if _PLAIN_ID_NUMBER.fullmatch(id_number) is not None:
        normalised = id_number
    elif ID_NUMBER.accepts(id_number):
        normalised = ids.normalise_id_number(id_number)
        if not normalised.isascii():
            normalised = ids.normalise_id_number(normalised)
    else:
        return _REFUSED, "invalid holder/id_number"
    if nationality is None or not ids.COUNTRY.accepts(nationality):
        return _REFUSED, "invalid holder/nationality"
    if not is_valid_holder_number(id_type, nationality, normalised):
        return _REFUSED, "invalid holder/id_number"
    return _NORMALISED, normalised


@functools.lru_cache(maxsize=1024)
def _operator_country(operator: str) -> str:
    country = ids.plmn_country(operator)
    assert country is not None
    return country


# A given event id is stored as UuidString loads it.
canonical_event_id: Final = canonical_uuid


_NAMESPACE_SHA1: Final = hashlib.sha1(IMPORT_NAMESPACE.bytes)


def import_event_id(name: str) -> str:
    """str(uuid.uuid5(IMPORT_NAMESPACE, name)), without building UUID objects."""
    digest = _NAMESPACE_SHA1.copy()
    digest.update(name.encode())
    raw = bytearray(digest.digest()[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50
    raw[8] = (raw[8] & 0x3F) | 0x80
    text = raw.hex()
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


Checker = Callable[[Sequence[str]], Row | str]
