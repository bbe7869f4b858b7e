"""The registry import's row checker gives the marshmallow schema's verdicts.

The reference below is how the import checked a row before: the CSV row as an
API registration request, loaded by `RegistrationRequestSchema`, the reason
being the first field path of the errors, the stored values taken from the
loaded event. Rows are generated valid and broken in every column.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import factories
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from registry_import import rows as registry_rows
from registry_import.rows import COLUMNS, IMPORT_NAMESPACE, RowChecker
from schemas.events import RegistrationRequestSchema
from schemas.pseudonym import holder_ref
from simguard.timefmt import to_text

SECRET = "a-test-secret"
HEADER = [*COLUMNS, "event_id"]


def reference(row: dict[str, str | None]) -> tuple[Any, ...] | str:
    event_id = row.get("event_id") or str(
        uuid.uuid5(IMPORT_NAMESPACE, f"{row['imsi']}|{row['registered_at']}|{row['status']}")
    )
    body = {
        "event_id": event_id,
        "operator": row["operator"],
        "imsi": row["imsi"],
        "iccid": row["iccid"],
        "msisdn": row["msisdn"],
        "holder": {
            "id_type": row["id_type"],
            "id_number": row["id_number"],
            "nationality": row["nationality"],
        },
        "verification": row["verification"],
        "registered_at": row["registered_at"],
        "status": row["status"],
    }
    try:
        event = RegistrationRequestSchema().load(body)
    except ValidationError as error:
        return _reason(error.messages)
    holder = event["holder"]
    registered_at = to_text(event["registered_at"])
    return (
        event["imsi"],
        str(event["event_id"]),
        event["operator"],
        event["iccid"],
        event["msisdn"],
        holder_ref(SECRET, holder["id_type"], holder["nationality"], holder["id_number"]),
        holder["nationality"],
        event["verification"],
        event["status"],
        registered_at,
        registered_at,
    )


def _reason(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _reason(value, f"{prefix}/{key}" if key != "_schema" else prefix)
    return f"invalid {prefix.lstrip('/') or 'row'}"


def valid_row(seed: int) -> dict[str, str | None]:
    return {
        "imsi": factories.imsi("52003", seed),
        "iccid": factories.iccid(seed),
        "msisdn": factories.msisdn(seed),
        "operator": "52003",
        "id_type": "national_id",
        "id_number": factories.thai_national_id(seed),
        "nationality": "TH",
        "verification": "in_person",
        "registered_at": "2025-03-04T05:06:07Z",
        "status": "active",
        "event_id": "",
    }


def _soon(minutes: int) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


# Per column: values the schema accepts and values it refuses, for some reason.
VARIANTS: dict[str, list[str | None]] = {
    "imsi": [None, "", "52003123456789", "000011234567890", "520041234567890", "52003123456789x"],
    "iccid": [None, "8966031234567890123", "89660312345678901230", "1966031234567890128", "89"],
    "msisdn": [
        None, "+66812345678", "+660812345678", "+66 812345678", "66812345678", "+6681234567",
        "+855121234567", "+12025550123", "+66212345678", "+668123456789",
    ],
    "operator": [None, "52001", "5200", "00001", "90101", "52003x", "45606"],
    "id_type": [None, "passport", "other", "NATIONAL_ID", ""],
    "id_number": [
        None, "", " - ", "1-2345-67890-12-1", "1234567890123", "1 2345 67890 12 1", "ab 123",
        "x" * 65, "x" * 64, "A\tB", "๑๒๓", "ﬀ-1", "0234567890121", "9234567890121",
    ],
    "nationality": [None, "KH", "th", "THA", "", "XK"],
    "verification": [None, "biometric", "ekyc", "none", "face", ""],
    "registered_at": [
        None, "2025-03-04T05:06:07.123456789Z", "2025-03-04T05:06:07+07:00",
        "2025-03-04t05:06:07z", "2025-03-04T05:06:07", "2025-02-30T05:06:07Z",
        "2025-03-04T24:00:00Z", "2025-03-04T05:60:07Z", "2025-03-04T05:06:60Z",
        "2025-13-04T05:06:07Z", "2024-02-29T05:06:07Z", "0999-03-04T05:06:07Z",
        "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01", _soon(1), _soon(30),
        "not a time", "",
    ],
    "status": [None, "suspended", "deregistered", "ACTIVE", ""],
    "event_id": [
        None, "", "not-a-uuid", "6F3F0A52-8D7E-4B6E-9A57-1D8C3C2B9E10",
        "6f3f0a528d7e4b6e9a571d8c3c2b9e10", str(uuid.uuid4()),
    ],
}  # fmt: skip


@st.composite
def rows(draw: st.DrawFn) -> dict[str, str | None]:
    row = valid_row(draw(st.integers(1, 10**6)))
    for column in draw(st.lists(st.sampled_from(sorted(VARIANTS)), max_size=3, unique=True)):
        row[column] = draw(st.sampled_from(VARIANTS[column]))
    return row


def as_record(row: dict[str, str | None]) -> list[str]:
    """The CSV record; a None cuts the record short there, as a short line does."""
    values: list[str] = []
    for column in HEADER:
        value = row[column]
        if value is None:
            break
        values.append(value)
    return values


def as_dict_reader_row(row: dict[str, str | None]) -> dict[str, str | None]:
    values = as_record(row)
    return {column: values[i] if i < len(values) else None for i, column in enumerate(HEADER)}


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows())
def test_row_checker_gives_the_schema_verdict_reason_and_stored_values(
    row: dict[str, str | None],
) -> None:
    checker = RowChecker(SECRET, HEADER)
    assert checker.check(as_record(row)) == reference(as_dict_reader_row(row))


def test_row_checker_accepts_valid_rows_as_the_schema_does() -> None:
    checker = RowChecker(SECRET, HEADER)
    for seed in range(1, 2001):
        row = valid_row(seed)
        verdict = checker.check(as_record(row))
        assert isinstance(verdict, tuple)
        assert verdict == reference(row)


def test_row_checker_reads_columns_by_header_name_in_any_order() -> None:
    header = list(reversed(HEADER))
    row = valid_row(7)
    checker = RowChecker(SECRET, header)
    assert checker.check([row[name] or "" for name in header]) == reference(row)


@given(st.text(max_size=40))
def test_import_event_id_is_the_uuid5_of_the_row(name: str) -> None:
    assert registry_rows.import_event_id(name) == str(uuid.uuid5(IMPORT_NAMESPACE, name))
