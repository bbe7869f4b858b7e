"""A dead letter never carries an identity number: what an operator produced
straight to Kafka is kept without its `id_number` members, or withheld when
it is not a JSON object; the detail masks digit runs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import pytest
from factories import thai_national_id, valid_registration_request

from schemas import DeadLetterSchema
from workers.dead_letter import REDACTED, record_value

NATIONAL_ID = thai_national_id(42)
FAILED_AT = datetime(2026, 11, 2, 3, 0, 1, tzinfo=UTC)


@dataclass
class Source:
    value: bytes | None
    topic: str = "sim.registrations.v1"
    partition: int = 0
    offset: int = 7


def dead_letter(value: bytes | None, detail: str = "holder_ref: Missing data.") -> dict[str, str]:
    text = record_value(Source(value), "invalid_event", detail, FAILED_AT)
    loaded: dict[str, str] = DeadLetterSchema().load(orjson.loads(text))
    return loaded


def test_a_registration_in_its_http_form_loses_its_id_number_and_keeps_the_rest() -> None:
    holder = {"id_type": "national_id", "nationality": "TH", "id_number": NATIONAL_ID}
    sent = valid_registration_request(holder=holder)
    letter = dead_letter(orjson.dumps(sent))

    kept = orjson.loads(letter["value"])
    assert NATIONAL_ID not in letter["value"]
    assert kept["holder"]["id_number"] == REDACTED
    assert kept["holder"]["nationality"] == "TH"
    assert kept["imsi"] == sent["imsi"]


def test_an_id_number_nested_in_a_list_is_redacted() -> None:
    letter = dead_letter(orjson.dumps({"events": [{"holder": {"id_number": NATIONAL_ID}}]}))
    assert NATIONAL_ID not in letter["value"]


def test_a_value_without_identity_members_is_kept_byte_for_byte() -> None:
    raw = b'{"imsi":  "520030000000001", "msisdn": "not-a-number"}'
    assert dead_letter(raw)["value"] == raw.decode()


@pytest.mark.parametrize(
    "raw",
    [NATIONAL_ID.encode(), f"oops {NATIONAL_ID}".encode(), b"\xff" + NATIONAL_ID.encode()],
    ids=["a JSON number", "not JSON", "not UTF-8"],
)
def test_a_value_that_is_not_a_json_object_is_withheld_by_its_hash(raw: bytes) -> None:
    letter = dead_letter(raw)
    assert letter["value_encoding"] == "withheld"
    assert letter["value"] == f"sha256:{hashlib.sha256(raw).hexdigest()} bytes:{len(raw)}"


def test_digit_runs_in_the_detail_are_masked() -> None:
    letter = dead_letter(b"{}", detail=f"{NATIONAL_ID}: Unknown field.")
    assert NATIONAL_ID not in letter["detail"]
    assert letter["detail"] == "#: Unknown field."
