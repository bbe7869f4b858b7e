"""What the soak measures on Kafka and the store: lag, and the final verdict."""

from __future__ import annotations

import time
from collections.abc import Iterator

import click
import orjson

from simguard.settings import Settings
from tooling.soak.plan import Verdict


class LagGauge:
    """The consumer group's lag over the input topics: each partition's last
    stable offset minus the group's committed offset."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

        from simguard.kafka_clients import connection_config

        self.settings = settings
        self._admin = KafkaAdminClient(**connection_config(settings))
        self._consumer = KafkaConsumer(
            **connection_config(settings),
            group_id=None,
            isolation_level="read_committed",
            enable_auto_commit=False,
        )
        self._partitions = [
            TopicPartition(topic, partition)
            for topic in settings.input_topics()
            for partition in range(settings.topic_partitions)
        ]

    def lag(self) -> int:
        ends = self._consumer.end_offsets(self._partitions)
        group = self.settings.consumer_group
        committed = self._admin.list_group_offsets({group: None}).get(group, {})
        total = 0
        for tp in self._partitions:
            done = committed.get(tp)
            total += max(ends[tp] - (done.offset if done is not None else 0), 0)
        return total

    def records(self, topics: list[str]) -> int:
        """Offsets written to `topics`: records, each resend counted."""
        partitions = [tp for tp in self._partitions if tp.topic in topics]
        return sum(self._consumer.end_offsets(partitions).values())

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()


def read_topic(settings: Settings, topic: str, timeout: float = 120.0) -> Iterator[bytes]:
    """Every committed record's value, as a read_committed regulator sees it."""
    from kafka import KafkaConsumer, TopicPartition

    from simguard.kafka_clients import connection_config

    consumer = KafkaConsumer(
        **connection_config(settings),
        group_id=None,
        isolation_level="read_committed",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    try:
        partitions = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        deadline = time.monotonic() + timeout
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise click.ClickException(f"could not read {topic} to its end in {timeout:.0f} s")
            for messages in consumer.poll(timeout_ms=500).values():
                for message in messages:
                    if message.value:
                        yield bytes(message.value)
    finally:
        consumer.close()


def verify(settings: Settings, acked_ids: set[str]) -> Verdict:
    from simguard.store import ledger as ledger_rows
    from simguard.store import open_store

    store = open_store(settings.database_url)
    try:
        with store.transaction() as tx:
            ledger = ledger_rows.holds_all(tx, sorted(acked_ids))
    finally:
        store.close()
    contents: dict[tuple[str, int], set[bytes]] = {}
    seen: dict[tuple[str, int], int] = {}
    records = 0
    for value in read_topic(settings, settings.topic_flagged):
        record = orjson.loads(value)
        case = (record["imsi"], int(record["version"]))
        contents.setdefault(case, set()).add(orjson.dumps(record, option=orjson.OPT_SORT_KEYS))
        seen[case] = seen.get(case, 0) + 1
        records += 1
    versions: dict[str, list[int]] = {}
    for imsi, version in contents:
        versions.setdefault(imsi, []).append(version)
    gapped = sum(1 for v in versions.values() if sorted(v) != list(range(1, len(v) + 1)))
    return Verdict(
        acked=len(acked_ids),
        applied=len(ledger),
        missing=len(acked_ids - ledger),
        case_records=records,
        sims_with_cases=len(versions),
        conflicting_versions=sum(1 for c in contents.values() if len(c) > 1),
        repeated_records=sum(1 for count in seen.values() if count > 1),
        gapped_sims=gapped,
    )
