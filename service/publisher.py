"""Publishing a request's records to Kafka, answered only once all are acked.

One producer per process, created on first use: under gunicorn that is after
the fork, since a producer's sockets and I/O thread do not survive one. All
records of a request are handed to the producer first and then awaited
against one deadline, so a batch costs one round of acknowledgements, not one
per event.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

from service.ack_watch import AckWatch, stall_seconds
from service.problems import Unavailable
from simguard.kafka_clients import api_producer, close_now
from simguard.partitioning import partition_for_key
from simguard.settings import Settings

log = logging.getLogger("simguard.api")


@dataclass(frozen=True)
class OutgoingRecord:
    key: bytes
    value: bytes
    # Per record, after the request's own headers (the validation attestation).
    headers: tuple[tuple[str, bytes], ...] = ()


class KafkaPublisher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._owner_pid: int | None = None
        self._failed_at: float | None = None
        self._lock = threading.Lock()
        self._ack_watch = AckWatch(stall_seconds(settings.api_kafka_ack_timeout_seconds))

    def publish(
        self,
        topic: str,
        records: Sequence[OutgoingRecord],
        headers: list[tuple[str, bytes]],
        timestamp_ms: int,
    ) -> None:
        """Return once Kafka acknowledged every record; raise Unavailable otherwise.

        On Unavailable some records may still reach the topic later (the
        producer keeps retrying them); the caller resends the whole request and
        the workers' idempotency per event_id makes that harmless.
        """
        timeout_seconds = self._settings.api_kafka_ack_timeout_seconds
        deadline = time.monotonic() + timeout_seconds
        producer = self._producer_for_this_process()
        try:
            # Waits for the topic's metadata as send would, under max_block_ms.
            partitions = len(producer.partitions_for(topic))
            futures = [
                producer.send(
                    topic,
                    key=record.key,
                    value=record.value,
                    headers=[*headers, *record.headers],
                    partition=partition_for_key(record.key, partitions),
                    timestamp_ms=timestamp_ms,
                )
                for record in records
            ]
            for future in futures:
                future.get(timeout=max(deadline - time.monotonic(), 0.0))
        except KafkaTimeoutError as error:
            if self._ack_watch.stalled(time.monotonic()):
                log.warning(
                    "kafka producer acknowledged nothing; replacing it",
                    extra={"fields": {"stall_seconds": self._ack_watch.stall_seconds}},
                )
                self._discard(producer)
            detail = f"Kafka did not acknowledge within {timeout_seconds:g} s."
            raise self._unavailable(detail) from error
        except KafkaError as error:
            # A producer that reports a non-retriable error (fenced, fatal
            # idempotence state, closed) is replaced, so that one bad moment of
            # the cluster does not leave this process refusing forever.
            log.warning(
                "kafka publish failed; replacing the producer",
                extra={"fields": {"error": type(error).__name__}},
            )
            self._discard(producer)
            raise self._unavailable("Kafka refused the records.") from error
        self._ack_watch.acknowledged(time.monotonic())

    def close(self, timeout_seconds: float = 5.0) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            producer.close(timeout=timeout_seconds)

    def _producer_for_this_process(self) -> KafkaProducer:
        producer = self._producer
        if producer is not None and self._owner_pid == os.getpid():
            return producer
        waiting_since = time.monotonic()
        with self._lock:
            if self._producer is not None and self._owner_pid == os.getpid():
                return self._producer
            # Threads that queued behind a failed attempt share its answer:
            # trying again one after the other would hold the last of them
            # for many ack timeouts while the broker is down.
            if self._failed_at is not None and self._failed_at >= waiting_since:
                raise self._unavailable("Kafka is not reachable.")
            try:
                self._producer = self._create()
                self._ack_watch.started(time.monotonic())
            except Unavailable:
                self._failed_at = time.monotonic()
                raise
            self._owner_pid = os.getpid()
            return self._producer

    def _create(self) -> KafkaProducer:
        timeout_ms = int(self._settings.api_kafka_ack_timeout_seconds * 1000)
        try:
            return api_producer(
                self._settings,
                # Bootstrapping counts against the same promise as an ack:
                # answer 503 within the ack timeout, never hang a worker.
                bootstrap_timeout_ms=timeout_ms,
            )
        except KafkaError as error:
            raise self._unavailable("Kafka is not reachable.") from error

    def _discard(self, producer: KafkaProducer) -> None:
        with self._lock:
            still_current = self._producer is producer
            if still_current:
                self._producer = None
        if not still_current:
            return  # another thread replaced it already
        close_now(producer)

    def _unavailable(self, detail: str) -> Unavailable:
        return Unavailable(
            f"{detail} Resend the whole request; events that did reach Kafka are "
            "applied once per event_id.",
            self._settings.api_retry_after_seconds,
        )
