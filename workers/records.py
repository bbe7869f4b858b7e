"""What the worker reads from Kafka, and what decoding makes of each record.

Decoding is pure and runs before the store's writer slot is taken; applying
reads only these types, so nothing private rides along inside an event dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from workers.decisions import Decision


class InputRecord(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    # Kafka's: 0 CreateTime (the producer's claim), 1 LogAppendTime (the broker's).
    timestamp_type: int
    headers: list[tuple[str, bytes]] | None


LOG_APPEND_TIME = 1


@dataclass
class RecordInMemory:
    """An `InputRecord` built without a broker: how benchmarks and tests hand
    the batch processor records of their own."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int = 0
    headers: list[tuple[str, bytes]] | None = None
    # LogAppendTime, as simguard's input topics are created with.
    timestamp_type: int = LOG_APPEND_TIME


class PoisonRecord(Exception):
    """The record cannot be applied; it goes to the dead-letter topic."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Arrival:
    """When an event reached simguard, and its times as the store writes them.

    Worked out while the batch is decoded, before the store's writer slot is
    taken: formatting them is a few microseconds an event that a second worker
    would otherwise wait for.
    """

    received_text: str
    # The event's own time (activated_at, registered_at, observed_at).
    at_text: str
    # Activations only: when it is judged UNREGISTERED unless a registration comes.
    unregistered_deadline_text: str | None = None


@dataclass(frozen=True, slots=True)
class DecodedEvent:
    """An operator's event, loaded and checked."""

    record: InputRecord
    event: dict[str, Any]
    # SHA-256 of the payload with sorted keys, as the ledger keeps it: what a
    # resend must match.
    content_hash: bytes
    arrival: Arrival
    # Usage only: the ledger key of the SIM's report for its day and the hash
    # of its counters (event_id aside). A second report of that day is a
    # duplicate when the counters match and a conflict when they do not.
    report: tuple[str, bytes] | None = None

    @property
    def event_id(self) -> str:
        return str(self.event["event_id"])


@dataclass(frozen=True, slots=True)
class DecodedRecheck:
    """A worker's request to re-evaluate one SIM of this partition."""

    record: InputRecord
    imsi: str
    check: str


@dataclass(frozen=True, slots=True)
class DecodedDecision:
    """A regulator's decision on a case of this partition, as the API published it."""

    record: InputRecord
    decision: Decision
    # Hex SHA-256 of the payload with sorted keys: what a resend must match.
    content_hash: str


@dataclass(frozen=True, slots=True)
class DecodedForeignIndicator:
    """A partner's indicator about one of its own SIMs, replicated to us."""

    record: InputRecord
    partner: str
    indicator: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that goes to the dead-letter topic, and why."""

    record: InputRecord
    poison: PoisonRecord


Decoded = DecodedEvent | DecodedRecheck | DecodedDecision | DecodedForeignIndicator | Refused
