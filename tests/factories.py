"""Valid events, case records, dead letters and identifiers, JSON-ready, for any test.

Everything is deterministic except `event_id`, a fresh UUID per call, so two
calls give two distinct events about the same SIM. Override any field by
keyword; pass `OMIT` to leave a field out:

    valid_activation(channel="dealer", dealer_id="D-0042", imei=OMIT)

The `seed` helpers give distinct, valid identifiers for distinct seeds (below
10**6 for `imei`, 10**8 for `msisdn`, 10**9 for `imsi`, 10**11 for the others).
`valid_usage` is for yesterday by the real clock (a usage day is only
accepted for a week). `error_paths` turns a ValidationError into the set of field paths it names.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from marshmallow import ValidationError
from stdnum import luhn
from stdnum.th import pin

from schemas.case_record import record_id_for

# 10:00 in Bangkok on a Monday: in the past, so no "future" check ever fires.
EVENT_TIME: Final = "2026-11-02T03:00:00Z"
OPERATOR: Final = "52003"  # AIS
MSISDN: Final = "+66812345678"


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Final = _Omit()


def thai_national_id(seed: int) -> str:
    """A Thai national ID with a valid check digit; never starts with 0 or 9 (not issued)."""
    body = f"{1 + seed % 8}{seed % 10**11:011d}"
    check_digit: str = pin.calc_check_digit(body)
    return body + check_digit


def iccid(seed: int) -> str:
    """A 20-digit ICCID: 89 (telecom), 66 (Thailand), issuer 03, serial, Luhn digit."""
    body = f"896603{seed % 10**13:013d}"
    check_digit: str = luhn.calc_check_digit(body)
    return body + check_digit


def imei(seed: int) -> str:
    """A 15-digit IMEI: an 8-digit type allocation code, a serial, a Luhn digit."""
    body = f"35332509{seed % 10**6:06d}"
    check_digit: str = luhn.calc_check_digit(body)
    return body + check_digit


def imsi(operator: str, seed: int) -> str:
    """A 15-digit IMSI of `operator`'s subscriber number `seed`."""
    msin_digits = 15 - len(operator)
    return f"{operator}{seed % 10**msin_digits:0{msin_digits}d}"


def msisdn(seed: int) -> str:
    """A Thai mobile number (+668 and eight digits)."""
    return f"+668{seed % 10**8:08d}"


def holder_ref(seed: int) -> str:
    """64 lower-case hex digits, shaped like the API's HMAC-SHA256 of a holder."""
    return hashlib.sha256(f"holder-{seed}".encode()).hexdigest()


def valid_activation(**overrides: Any) -> dict[str, Any]:
    operator = _operator(overrides)
    return _apply(
        {
            "event_id": str(uuid.uuid4()),
            "operator": operator,
            "imsi": imsi(operator, 1),
            "iccid": iccid(1),
            "msisdn": MSISDN,
            "activated_at": EVENT_TIME,
            "channel": "retail",
        },
        overrides,
    )


def valid_holder(**overrides: Any) -> dict[str, Any]:
    return _apply(
        {"id_type": "national_id", "id_number": thai_national_id(1), "nationality": "TH"},
        overrides,
    )


def valid_registration_request(**overrides: Any) -> dict[str, Any]:
    """A registration as sent over HTTP, with a Thai national ID in clear."""
    operator = _operator(overrides)
    return _apply(
        {
            "event_id": str(uuid.uuid4()),
            "operator": operator,
            "imsi": imsi(operator, 1),
            "iccid": iccid(1),
            "msisdn": MSISDN,
            "holder": valid_holder(),
            "verification": "biometric",
            "registered_at": EVENT_TIME,
            "status": "active",
        },
        overrides,
    )


def valid_registration_wire(**overrides: Any) -> dict[str, Any]:
    """A registration as on Kafka, with `holder_ref` in place of the identity document."""
    operator = _operator(overrides)
    return _apply(
        {
            "event_id": str(uuid.uuid4()),
            "operator": operator,
            "imsi": imsi(operator, 1),
            "iccid": iccid(1),
            "msisdn": MSISDN,
            "holder_ref": holder_ref(1),
            "holder_nationality": "TH",
            "verification": "biometric",
            "registered_at": EVENT_TIME,
            "status": "active",
        },
        overrides,
    )


def valid_network_event(**overrides: Any) -> dict[str, Any]:
    """An observation on the home network, without a cell id (so no border rule counts it)."""
    operator = _operator(overrides)
    return _apply(
        {
            "event_id": str(uuid.uuid4()),
            "operator": operator,
            "imsi": imsi(operator, 1),
            "observed_at": EVENT_TIME,
            "visited_plmn": operator,
        },
        overrides,
    )


def yesterday() -> str:
    """Yesterday's UTC date: usage days are judged against the real clock (a
    day more than a week old is refused), so this one factory follows it."""
    return (datetime.now(UTC) - timedelta(days=1)).date().isoformat()


def valid_usage(**overrides: Any) -> dict[str, Any]:
    """Yesterday's usage of an ordinary SIM: a few calls, from a few cells."""
    operator = _operator(overrides)
    return _apply(
        {
            "event_id": str(uuid.uuid4()),
            "operator": operator,
            "imsi": imsi(operator, 1),
            "day": yesterday(),
            "outgoing_calls": 12,
            "distinct_called_numbers": 7,
            "distinct_cells": 5,
            "top_cell_share": 0.4,
        },
        overrides,
    )


def valid_case_record(**overrides: Any) -> dict[str, Any]:
    """Version 1 of a case: the SIM flagged UNREGISTERED at its deadline.

    `record_id` follows the (possibly overridden) imsi and version unless it is
    overridden itself.
    """
    flagged_at = "2026-11-02T03:15:00Z"
    record = _apply(
        {
            "imsi": imsi(OPERATOR, 1),
            "iccid": iccid(1),
            "msisdn": MSISDN,
            "operator": OPERATOR,
            "status": "flagged",
            "version": 1,
            "risk_score": 40,
            "reasons": [
                {
                    "code": "UNREGISTERED",
                    "since": flagged_at,
                    "evidence": {"activated_at": EVENT_TIME, "deadline": flagged_at},
                }
            ],
            "first_flagged_at": flagged_at,
            "updated_at": flagged_at,
            "rules_version": "th-2026.11.1",
            "schema_version": 2,
            "decision": None,
        },
        overrides,
    )
    derived = {"record_id": record_id_for(str(record.get("imsi")), record.get("version", 0))}
    explicit = {name: value for name, value in overrides.items() if name == "record_id"}
    return _apply({**derived, **record}, explicit)


def valid_dead_letter(**overrides: Any) -> dict[str, Any]:
    """An activation that failed validation, as the dead-letter topic carries it."""
    return _apply(
        {
            "source_topic": "sim.activations.v1",
            "partition": 3,
            "offset": 1042,
            "error": "invalid_event",
            "detail": "msisdn: MSISDN is not a number of the operator's country (TH).",
            "failed_at": "2026-11-02T03:00:01Z",
            "value": '{"event_id": "not-a-uuid"}',
            "value_encoding": "utf-8",
        },
        overrides,
    )


def _operator(overrides: Mapping[str, Any]) -> str:
    """The overriding operator when it can own the default IMSI, else the default one."""
    operator = overrides.get("operator")
    return operator if isinstance(operator, str) and operator.isdigit() else OPERATOR


def _apply(event: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in overrides.items():
        if value is OMIT:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def error_paths(error: ValidationError) -> set[tuple[str | int, ...]]:
    """The path of every field named in `error`, e.g. {("location", "country")}."""
    return set(_paths(error.messages, ()))


def _paths(messages: Any, prefix: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    if isinstance(messages, Mapping):
        return [path for key, inner in messages.items() for path in _paths(inner, (*prefix, key))]
    return [prefix]
