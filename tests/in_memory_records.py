"""Input records built in memory, for testing the worker's batch processing
without a broker (the `InputRecord` protocol is all `BatchProcessor` reads)."""

from __future__ import annotations

from dataclasses import dataclass

from workers.records import LOG_APPEND_TIME


@dataclass
class InMemoryRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: list[tuple[str, bytes]] | None = None
    timestamp_type: int = LOG_APPEND_TIME
