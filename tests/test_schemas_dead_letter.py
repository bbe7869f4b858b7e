"""Dead-letter records: where a message came from, why it failed, and the message itself."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from factories import OMIT, error_paths, valid_dead_letter
from hypothesis import given
from hypothesis import strategies as st
from marshmallow import ValidationError

from schemas import DeadLetterSchema, dead_letter_value, original_value


def test_utf8_value_is_kept_as_text() -> None:
    assert dead_letter_value('{"msisdn": "+66812345678", "x": "ไทย"}'.encode()) == (
        '{"msisdn": "+66812345678", "x": "ไทย"}',
        "utf-8",
    )


def test_invalid_utf8_value_is_kept_as_base64() -> None:
    raw = b"\xff\xfe{not json"
    assert dead_letter_value(raw) == (base64.b64encode(raw).decode("ascii"), "base64")


def test_empty_value_is_empty_text() -> None:
    assert dead_letter_value(b"") == ("", "utf-8")


@given(st.binary(max_size=200))
def test_original_value_gives_back_the_exact_bytes(raw: bytes) -> None:
    assert original_value(*dead_letter_value(raw)) == raw


def test_original_value_refuses_an_unknown_encoding() -> None:
    with pytest.raises(ValueError, match="latin-1"):
        original_value("abc", "latin-1")


@pytest.mark.parametrize("error", ["invalid_event", "unparseable", "event_id_conflict"])
def test_record_with_each_error_code_loads(error: str) -> None:
    assert DeadLetterSchema().load(valid_dead_letter(error=error))["error"] == error


def test_record_of_a_binary_value_loads() -> None:
    value, encoding = dead_letter_value(b"\x00\xff\x10")
    loaded = DeadLetterSchema().load(valid_dead_letter(value=value, value_encoding=encoding))
    assert original_value(loaded["value"], loaded["value_encoding"]) == b"\x00\xff\x10"


def test_detail_is_optional() -> None:
    assert "detail" not in DeadLetterSchema().load(valid_dead_letter(detail=OMIT))


def test_record_round_trips() -> None:
    record = valid_dead_letter()
    schema = DeadLetterSchema()
    loaded = schema.load(record)
    assert schema.load(schema.dump(loaded)) == loaded
    assert schema.dump(loaded) == record


INVALID_FIELDS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("source_topic empty", {"source_topic": ""}, ("source_topic",)),
    ("partition negative", {"partition": -1}, ("partition",)),
    ("offset as a string", {"offset": "1042"}, ("offset",)),
    ("error not a code", {"error": "Invalid event!"}, ("error",)),
    ("error with a newline", {"error": "invalid_event\n"}, ("error",)),
    ("error missing", {"error": OMIT}, ("error",)),
    ("failed_at without zone", {"failed_at": "2026-11-02T03:00:01"}, ("failed_at",)),
    ("value missing", {"value": OMIT}, ("value",)),
    ("value_encoding unknown", {"value_encoding": "latin-1"}, ("value_encoding",)),
    ("value_encoding missing", {"value_encoding": OMIT}, ("value_encoding",)),
    ("value not base64", {"value": "not base64!", "value_encoding": "base64"}, ("value",)),
    ("unknown field", {"key": "520030000000001"}, ("key",)),
]


@pytest.mark.parametrize(
    ("overrides", "path"),
    [pytest.param(overrides, path, id=name) for name, overrides, path in INVALID_FIELDS],
)
def test_invalid_field_is_reported_at_its_path_only(
    overrides: dict[str, Any], path: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as raised:
        DeadLetterSchema().load(valid_dead_letter(**overrides))
    assert error_paths(raised.value) == {path}
