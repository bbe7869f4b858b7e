"""How far behind each partner regulator's link runs: the age of the newest
MirrorMaker 2 heartbeat replicated from the partner's cluster to ours.

MirrorMaker 2 emits a heartbeat into its source cluster's `heartbeats` topic
every second and copies it here as `<partner>.heartbeats` with its creation
time, so now minus the newest one's time is the replication lag of the link
(and grows without bound while the partner's cluster, or the link, is down).
"""

from __future__ import annotations

from collections.abc import Mapping

from kafka import KafkaConsumer, TopicPartition

from simguard.kafka_clients import connection_config
from simguard.settings import Settings

HEARTBEATS_TOPIC = "heartbeats"
POLL_MS = 2_000


def heartbeat_topics(settings: Settings) -> dict[str, str]:
    """Partner -> its replicated heartbeat topic on our cluster."""
    return {partner: f"{partner}.{HEARTBEATS_TOPIC}" for partner in settings.rules.partners}


class HeartbeatWatch:
    """Reads the newest heartbeat of each partner's link, on demand."""

    def __init__(self, settings: Settings) -> None:
        self._topics = heartbeat_topics(settings)
        self._consumer: KafkaConsumer | None = None
        self._settings = settings

    def newest_ms(self) -> Mapping[str, int]:
        """Partner -> the newest heartbeat's timestamp (ms); a partner with none yet is absent."""
        if not self._topics:
            return {}
        consumer = self._consumer or self._connect()
        newest: dict[str, int] = {}
        for partner, topic in self._topics.items():
            partitions = consumer.partitions_for_topic(topic)
            if not partitions:
                continue
            assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
            consumer.assign(assigned)
            ends = consumer.end_offsets(assigned)
            last = [tp for tp in assigned if ends[tp] > 0]
            for tp in last:
                consumer.seek(tp, ends[tp] - 1)
            if not last:
                continue
            for records in consumer.poll(timeout_ms=POLL_MS, max_records=len(last) * 4).values():
                for record in records:
                    newest[partner] = max(newest.get(partner, 0), record.timestamp)
        return newest

    def _connect(self) -> KafkaConsumer:
        self._consumer = KafkaConsumer(
            **connection_config(self._settings), group_id=None, enable_auto_commit=False
        )
        return self._consumer

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
