"""Read and write topics the way an outside party would, for assertions.

Readers use a fresh consumer without a group (assign + seek), so reading never
moves a group's offsets, and `read_committed`, so what a test sees is what a
regulator would see.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaConsumer, TopicPartition

from simguard.kafka_clients import connection_config, reliable_producer
from simguard.settings import Settings

# The `make_settings` fixture's type: make_settings(**overrides) -> Settings.
MakeSettings = Callable[..., Settings]


@dataclass(frozen=True)
class Record:
    key: str | None
    # A tombstone (null value) reads as b"".
    value: bytes
    partition: int
    offset: int
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int = 0

    def json(self) -> Any:
        return orjson.loads(self.value)


def _consumer(settings: Settings) -> KafkaConsumer:
    return KafkaConsumer(
        **connection_config(settings),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        request_timeout_ms=10_000,
    )


def _partitions(consumer: KafkaConsumer, topic: str, timeout: float) -> list[TopicPartition]:
    deadline = time.monotonic() + timeout
    while True:
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return [TopicPartition(topic, p) for p in sorted(partitions)]
        if time.monotonic() >= deadline:
            raise AssertionError(f"topic {topic} not found")
        time.sleep(0.1)


def read_all(
    settings: Settings, topic: str, timeout: float = 10.0, min_count: int = 0
) -> list[Record]:
    """Every committed record of `topic`, by (partition, offset).

    Reads until each partition's position reaches its end offset (the last
    stable offset under read_committed) and at least `min_count` records have
    come, or until `timeout` seconds pass; then returns what it has, so the
    caller's assertion says what is missing.
    """
    deadline = time.monotonic() + timeout
    consumer = _consumer(settings)
    records: list[Record] = []
    try:
        partitions = _partitions(consumer, topic, timeout)
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        while time.monotonic() < deadline:
            batches = consumer.poll(timeout_ms=200)
            for batch in batches.values():
                records.extend(_record(message) for message in batch)
            if len(records) < min_count:
                continue
            end_offsets = consumer.end_offsets(partitions)
            if all(consumer.position(tp) >= end_offsets[tp] for tp in partitions):
                break
    finally:
        consumer.close()
    return sorted(records, key=lambda r: (r.partition, r.offset))


def end_offsets_total(settings: Settings, topic: str) -> int:
    """Sum of the partitions' end offsets (up to the last stable offset):
    records, aborted ones included, plus transaction markers."""
    consumer = _consumer(settings)
    try:
        partitions = _partitions(consumer, topic, 10.0)
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


def produce_raw(
    settings: Settings,
    topic: str,
    key: str | None,
    value: bytes,
    headers: list[tuple[str, bytes]] | None = None,
) -> None:
    """One record, acknowledged by all in-sync replicas before returning."""
    producer = reliable_producer(settings, max_block_ms=10_000)
    try:
        future = producer.send(
            topic,
            key=None if key is None else key.encode(),
            value=value,
            headers=headers or [],
        )
        producer.flush(timeout=10)
        future.get(timeout=10)
    finally:
        producer.close(timeout=5)


def _record(message: Any) -> Record:
    return Record(
        key=None if message.key is None else message.key.decode("utf-8", "replace"),
        value=message.value or b"",
        partition=message.partition,
        offset=message.offset,
        headers=tuple((name, bytes(value)) for name, value in message.headers or ()),
        timestamp_ms=message.timestamp,
    )
