"""Dead-letter records: the source message's key, and where it came from."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

import orjson

from schemas.dead_letter import dead_letter_value
from simguard.timefmt import to_text


class SourceRecord(Protocol):
    topic: str
    partition: int
    offset: int
    value: bytes | None


def record_value(record: SourceRecord, error: str, detail: str, failed_at: datetime) -> str:
    text, encoding = dead_letter_value(record.value or b"")
    return orjson.dumps(
        {
            "source_topic": record.topic,
            "partition": record.partition,
            "offset": record.offset,
            "error": error,
            "detail": detail[:2000],
            "failed_at": to_text(failed_at),
            "value": text,
            "value_encoding": encoding,
        }
    ).decode()
