"""Kafka plumbing the benchmarks share: loading topics with events, reading
where a topic ends and how far a consumer group has committed."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from schemas import attestation, operator_signature
from simguard.kafka_clients import admin_client, connection_config, reliable_producer
from simguard.settings import Settings

# Loading a backlog is set-up, not a measured figure: big batches, long linger.
_LOAD_BATCH_BYTES = 1024 * 1024
_LOAD_LINGER_MS = 20


def loading_producer(settings: Settings) -> KafkaProducer:
    return reliable_producer(
        settings,
        linger_ms=_LOAD_LINGER_MS,
        batch_size=_LOAD_BATCH_BYTES,
        max_block_ms=60_000,
        request_timeout_ms=30_000,
    )


def produce(
    settings: Settings, records: Iterable[tuple[str, bytes, bytes]], attested: bool = True
) -> int:
    """Send (topic, key, value) records with acks=all and wait for every ack.

    `attested` signs each value as the API does after validating it, so the
    worker sees what it sees in production for events that came through the
    API; otherwise each record is signed as its operator producing straight
    to Kafka would sign it, and the worker validates it in full.
    """
    producer = loading_producer(settings)
    count = 0
    try:
        for topic, key, value in records:
            if attested:
                headers = [
                    (attestation.HEADER, attestation.sign(settings.attestation_secret, value))
                ]
            else:
                headers = operator_signed(settings, key, value)
            producer.send(topic, key=key, value=value, headers=headers)
            count += 1
        producer.flush(timeout=300)
    finally:
        producer.close(timeout=30)
    return count


def operator_signed(settings: Settings, key: bytes, value: bytes) -> list[tuple[str, bytes]]:
    """The header an operator producing `value` straight to Kafka sends."""
    plmn = orjson.loads(value)["operator"]
    signature = operator_signature.sign_for(settings.operator_signing_secret, plmn, key, value)
    return [(operator_signature.HEADER, signature)]


def partitions(settings: Settings, topics: Iterable[str]) -> list[TopicPartition]:
    consumer = KafkaConsumer(**connection_config(settings))
    try:
        found = []
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                found.append(TopicPartition(topic, partition))
        return found
    finally:
        consumer.close()


def end_total(settings: Settings, topics: Iterable[str]) -> int:
    """Records in the topics (their end offsets added up)."""
    tps = partitions(settings, topics)
    consumer = KafkaConsumer(**connection_config(settings))
    try:
        ends: dict[TopicPartition, int] = consumer.end_offsets(tps)
        return sum(ends.values())
    finally:
        consumer.close()


@dataclass
class Progress:
    """Samples of (monotonic time, records committed) while a group catches up."""

    target: int
    samples: list[tuple[float, int]] = field(default_factory=list)
    # When every expected member of the group first held partitions (None: never seen).
    all_in_at: float | None = None

    def steady_rate(self) -> tuple[float, int, float, bool]:
        """(records/s, records, seconds, steady) from the first commit to the last sample.

        The worker's start-up (imports, joining the group, the producer's
        transaction set-up) comes before its first commit and is left out,
        as the raw consumer's connection set-up is left out of its rate. So
        are the commits made before every worker of the group held partitions
        (one worker alone, then the rebalance). A backlog worked off in one
        commit has no steady part: then the rate runs from the start of the
        watch (`steady` is False)."""
        samples = self.samples
        if self.all_in_at is not None:
            together = [(t, c) for t, c in samples if t >= self.all_in_at]
            if len(together) >= 2:
                samples = together
        if len(samples) < 2:
            return 0.0, 0, 0.0, False
        started = next(((t, c) for t, c in samples if c > 0), samples[-1])
        end_time, end_count = samples[-1]
        steady = end_count > started[1]
        if not steady:
            started = samples[0]
        seconds = end_time - started[0]
        records = end_count - started[1]
        return (records / seconds if seconds > 0 else 0.0), records, seconds, steady

    @property
    def done(self) -> bool:
        return bool(self.samples) and self.samples[-1][1] >= self.target


def watch_commits(
    settings: Settings,
    topics: list[str],
    target: int,
    timeout: float,
    interval: float = 0.2,
    alive: Any = None,
    members: int = 1,
) -> Progress:
    """Poll the group's committed offsets on `topics` until they add up to
    `target` or `timeout` passes (or `alive()` turns false), noting when
    `members` workers (more than one) first all hold partitions of the group."""
    progress = Progress(target)
    wanted = set(topics)
    admin = admin_client(settings)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if (
                members > 1
                and progress.all_in_at is None
                and _members_with_partitions(admin, settings) >= members
            ):
                progress.all_in_at = time.monotonic()
            try:
                offsets = admin.list_group_offsets(settings.consumer_group)[settings.consumer_group]
            except KafkaError:
                # A transaction of the group may be completing (unstable offsets).
                time.sleep(interval)
                continue
            committed = sum(
                meta.offset
                for tp, meta in offsets.items()
                if tp.topic in wanted and meta.offset > 0
            )
            progress.samples.append((time.monotonic(), committed))
            if committed >= target or (alive is not None and not alive()):
                break
            time.sleep(interval)
    finally:
        admin.close()
    return progress


def _members_with_partitions(admin: Any, settings: Settings) -> int:
    """Members of the group holding partitions, once it is stable (0 meanwhile)."""
    try:
        group = admin.describe_groups([settings.consumer_group])[settings.consumer_group]
    except KafkaError:
        return 0
    if group.get("group_state") != "Stable":
        return 0
    return sum(1 for member in group.get("members", []) if _holds_partitions(member))


def _holds_partitions(member: dict[str, Any]) -> bool:
    assignment = member.get("member_assignment") or {}
    return any(topic.get("partitions") for topic in assignment.get("assigned_partitions", []))
