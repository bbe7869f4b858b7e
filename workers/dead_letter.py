"""Dead-letter records: the source message's key, and where it came from.

A dead letter never carries an identity number, though an operator may have
produced one straight to Kafka (a registration in its HTTP form, with
`holder.id_number`): a JSON value keeps everything but its `id_number`
members, and a value that is not a JSON object is withheld (its SHA-256 and
length kept, to match it with the operator's copy). Runs of digits in the
detail, which may quote a member's name, are masked too."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from typing import Any, Protocol

import orjson

from schemas.dead_letter import WITHHELD, dead_letter_value
from simguard.timefmt import to_text

REDACTED = "[redacted]"
_IDENTITY_MEMBERS = frozenset({"id_number"})
_DIGIT_RUN = re.compile(r"[0-9]{6,}")


class SourceRecord(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


def record_value(record: SourceRecord, error: str, detail: str, failed_at: datetime) -> str:
    text, encoding = _redacted(record.value or b"")
    return orjson.dumps(
        {
            "source_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "error": error,
            "detail": _DIGIT_RUN.sub("#", detail)[:2000],
            "failed_at": to_text(failed_at),
            "value": text,
            "value_encoding": encoding,
        }
    ).decode()


def _redacted(raw: bytes) -> tuple[str, str]:
    """(value, value_encoding) with no identity number left in it."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        if not raw:
            return dead_letter_value(raw)
        return f"sha256:{hashlib.sha256(raw).hexdigest()} bytes:{len(raw)}", WITHHELD
    cleaned, changed = _without_identity(payload)
    # Unchanged values stay byte for byte what the operator sent, to replay.
    return (orjson.dumps(cleaned).decode(), "utf-8") if changed else dead_letter_value(raw)


def _without_identity(value: Any) -> tuple[Any, bool]:
    if isinstance(value, dict):
        changed = False
        cleaned: dict[str, Any] = {}
        for key, member in value.items():
            if key in _IDENTITY_MEMBERS:
                cleaned[key], changed = REDACTED, True
            else:
                cleaned[key], member_changed = _without_identity(member)
                changed = changed or member_changed
        return cleaned, changed
    if isinstance(value, list):
        items = [_without_identity(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False
