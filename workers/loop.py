"""The worker's poll / apply / publish loop.

Order of a step, and why (quix-streams' checkpointing, with the store in it):
1. poll a bounded batch (max_poll_records) from the owned partitions;
2. apply it, and the due deadlines, in ONE store transaction, which also
   writes the records it produces to the outbox: state and outputs are durable
   together or not at all;
3. publish the outbox in ONE Kafka transaction together with the consumed
   offsets, whose metadata names the last outbox row published per shard;
4. forget the published outbox rows (in the next step's store transaction).
A kill between 2 and 3 re-reads the batch: the idempotency ledger skips it and
step 3 publishes the waiting rows. A kill between 3 and 4 leaves rows that the
committed metadata already marks as published. Regulators reading with
read_committed therefore see every case record exactly once.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import KafkaError, ProducerFencedError
from kafka.structs import OffsetAndMetadata

from simguard.kafka_clients import (
    manual_commit_consumer,
    topics_on_producer_time,
    transactional_producer,
)
from simguard.settings import Settings
from simguard.store import StoreConflict, open_store
from simguard.timefmt import from_text, utc_now
from workers import outbox, transactions
from workers import worker_metrics as metrics
from workers.assignment_watch import AssignmentWatch
from workers.collection import CollectorBetweenSteps
from workers.faults import FaultSwitches
from workers.housekeeping import prune
from workers.processor import BatchOutcome, BatchProcessor
from workers.shard_fence import ShardFence, ShardFenced
from workers.stall_watch import StallWatch
from workers.store_gauges import store_counts

log = logging.getLogger("simguard.worker")


@dataclass(frozen=True)
class LoopPolicy:
    """How long the loop waits for what, and how often it does what."""

    # How often the clock-driven deadlines and the gauges are looked at.
    deadline_scan_seconds: float = 1.0
    gauge_seconds: float = 5.0
    housekeeping_seconds: float = 3600.0
    # The first housekeeping run after start: soon, but not during the join.
    first_housekeeping_seconds: float = 60.0
    # Longest wait for one transaction step (offsets, flush, commit, abort)
    # before the producer is presumed stuck and replaced; well under
    # max.poll.interval.
    transaction_step_ms: int = 15_000
    # kafka-python's consumer calls default to request_timeout_ms (305 s): far
    # too long for a loop whose health is judged by how often it comes back.
    client_call_ms: int = 10_000
    # A store transaction undone by a conflict (PostgreSQL's deadlock or
    # serialisation failure) is run again this many times in all before the
    # worker gives up and exits, as it would on any other store error.
    store_attempts: int = 5
    # How long a starting worker waits for its input topics to exist.
    topic_wait_seconds: float = 120.0
    # Records to read and no position moving for this long: the consumer has stalled.
    stall_seconds: float = 30.0
    # A poll's longest wait while the group rebalances: a join waits for every
    # member to rejoin, typically a heartbeat interval (3 s) or two.
    rebalance_poll_ms: int = 5_000
    # A rebalance still open after this long is presumed stuck and the
    # consumer replaced; a slow member delays one by the length of its step.
    rebalance_limit_seconds: float = 60.0


class WorkerLoop:
    def __init__(
        self,
        settings: Settings,
        name: str,
        clock: Callable[[], datetime] = utc_now,
        policy: LoopPolicy | None = None,
        faults: FaultSwitches | None = None,
    ) -> None:
        self.settings = settings
        self.name = name
        self.clock = clock
        self.policy = policy or LoopPolicy()
        faults = faults or FaultSwitches()
        self.store = open_store(settings.database_url, background_checkpoints=True)
        self.processor = BatchProcessor(settings)
        self.stopping = False
        self.last_step_at = time.monotonic()
        self._listener = AssignmentWatch()
        self._assignment: set[TopicPartition] = set()
        self._published: dict[int, int] = {}
        self._to_forget: dict[int, int] = {}
        self._next_deadline_scan = 0.0
        self._next_gauges = 0.0
        self._next_housekeeping = time.monotonic() + self.policy.first_housekeeping_seconds
        self._fence = ShardFence(name)
        self._kill_switch = faults.kill
        self._stall_switch = faults.stall
        self._phase = faults.phase
        self._stall_watch = StallWatch(self.policy.stall_seconds)
        self.consumer = self._joined_consumer()
        # A stable transactional id per worker name: a restarted worker fences
        # and aborts its predecessor's open transaction at once, instead of
        # leaving read_committed readers waiting for the transaction timeout.
        self._transactional_id = f"simguard-{settings.consumer_group}-{name}"
        self.producer = transactional_producer(settings, self._transactional_id)
        self.producer.init_transactions()

    def _joined_consumer(self) -> KafkaConsumer:
        consumer = manual_commit_consumer(
            self.settings,
            group_id=self.settings.consumer_group,
            client_id=self.name,
            max_poll_records=self.settings.worker_max_batch_records,
            # Range assignment gives one worker partition p of every input topic,
            # so all of a SIM's events (keyed by IMSI) meet in one worker.
            partition_assignment_strategy=[RangePartitionAssignor],
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            max_poll_interval_ms=120_000,
        )
        self._wait_for_partitions(consumer, self.settings.input_topics())
        _refuse_producer_time(self.settings)
        consumer.subscribe(self.settings.input_topics(), listener=self._listener)
        return consumer

    def _wait_for_partitions(self, consumer: KafkaConsumer, topics: list[str]) -> None:
        """Know every input topic's partitions before joining the group.

        A group leader that assigns before its metadata has come gives out no
        partitions at all, and kafka-python may not rebalance until its next
        periodic metadata refresh (minutes): the worker would sit idle.
        """
        deadline = time.monotonic() + self.policy.topic_wait_seconds
        while True:
            partitions = {topic: len(_partitions_of(consumer, topic)) for topic in topics}
            missing = [topic for topic, count in partitions.items() if not count]
            if not missing:
                # A record's partition is checked against these, as the broker has them.
                self.processor.partition_counts = partitions
                return
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"input topics missing after {self.policy.topic_wait_seconds:.0f} s: {missing}"
                )
            log.warning("waiting for input topics to exist: %s", ", ".join(missing))
            time.sleep(1.0)

    # --- the loop -------------------------------------------------------------------
    def run(self) -> None:
        log.info("worker started", extra={"worker": self.name})
        collector = CollectorBetweenSteps()
        collector.start()
        try:
            while not self.stopping:
                self.step()
                collector.after_step()
        finally:
            collector.stop()
        self.close()

    def step(self) -> None:
        # A rebalance is awaited inside one poll, not across many short ones.
        timeout_ms = (
            self.policy.rebalance_poll_ms
            if self._listener.rebalancing
            else self.settings.worker_poll_timeout_ms
        )
        self._phase.enter("polling")
        batch = self.consumer.poll(
            timeout_ms=timeout_ms, max_records=self.settings.worker_max_batch_records
        )
        self.last_step_at = time.monotonic()
        if self._listener.rebalancing:
            # Nothing more is asked of the consumer until the group has
            # assigned partitions (workers/assignment_watch.py). Records of
            # partitions being revoked are left to their next owner, who reads
            # them again from the committed offsets.
            if self._listener.overdue(self.policy.rebalance_limit_seconds):
                log.warning(
                    "no assignment %.0f s into a rebalance; replacing the consumer",
                    self.policy.rebalance_limit_seconds,
                )
                self._replace_consumer()
            return
        if self._listener.changed:
            self._take_assignment()
        records = [r for tp in sorted(batch, key=_tp_order) for r in batch[tp]]
        scan_deadlines = time.monotonic() >= self._next_deadline_scan
        if not records and not scan_deadlines:
            return
        started = time.perf_counter()
        now = self.clock()
        shards = sorted({tp.partition for tp in self._assignment})
        self._phase.enter("in_store_transaction")
        try:
            outcome, pending = self._apply_in_store(records, scan_deadlines, shards, now)
        except ShardFenced as exc:
            self._on_fenced(exc)
            return
        self._to_forget = {}
        if scan_deadlines:
            self._next_deadline_scan = time.monotonic() + self.policy.deadline_scan_seconds
        self._phase.enter("between_commits")
        if records:
            self._kill_switch.reached("after_store_commit")
            self._stall_switch.after_batch(self.consumer)
        if records or pending:
            self._publish(pending)
        self._observe(outcome, pending, started)

    def _apply_in_store(
        self, records: list[Any], scan_deadlines: bool, shards: list[int], now: datetime
    ) -> tuple[BatchOutcome, list[outbox.OutboxRow]]:
        """The batch's store transaction, run again when the store undid it to
        end a conflict with another worker's (nothing of it was kept)."""
        attempt = 1
        while True:
            # Decoded anew for each attempt: applying may have changed the events.
            decoded = self.processor.decode(records, now)
            try:
                touched = {*shards, *(record.partition for record in records)}
                with self._fence.transaction(self.store, touched) as tx:
                    if self._to_forget:
                        outbox.forget_published(tx, self._to_forget)
                    outcome = BatchOutcome()
                    if records:
                        outcome = self.processor.apply_records(tx, decoded, now)
                    if scan_deadlines:
                        _merge(outcome, self.processor.apply_due(tx, shards, now))
                    pending = outbox.unpublished(
                        tx, shards, self._published, self.settings.topic_rechecks
                    )
                return outcome, pending
            except StoreConflict as exc:
                if attempt == self.policy.store_attempts:
                    raise
                log.warning(
                    "store transaction undone by a conflict (%s); running it again",
                    exc,
                    extra={"worker": self.name, "attempt": attempt},
                )
                self.last_step_at = time.monotonic()
                # Apart at random, so that the two sides do not meet again at once.
                time.sleep(random.uniform(0.01, 0.05) * attempt)
                attempt += 1

    def _on_fenced(self, exc: ShardFenced) -> None:
        """Another worker owns a shard this one still polls: the group moved on
        without it (a pause longer than the session). Nothing of the batch was
        kept; rejoin, as a restarted worker would, and resume from the
        committed offsets of whatever the group assigns now."""
        log.warning(
            "store transaction fenced (%s); rejoining the group",
            exc,
            extra={"worker": self.name},
        )
        self._to_forget = {}
        self._replace_consumer()

    def _publish(self, pending: list[outbox.OutboxRow]) -> None:
        published = dict(self._published)
        for row in pending:
            published[row.shard] = max(published.get(row.shard, 0), row.seq)
        try:
            self.producer.begin_transaction()
            for row in pending:
                self.producer.send(
                    row.topic,
                    key=row.key.encode() if row.key is not None else None,
                    value=row.value.encode(),
                    partition=row.partition,
                )
            offsets = {
                tp: OffsetAndMetadata(
                    self.consumer.position(tp, timeout_ms=self.policy.client_call_ms),
                    outbox.metadata_for(published.get(tp.partition, 0)),
                    -1,
                )
                for tp in self._assignment
            }
            if offsets:
                transactions.send_offsets(
                    self.producer,
                    offsets,
                    self.consumer.group_metadata(),
                    self.policy.transaction_step_ms,
                )
            self.producer.flush(timeout=self.policy.transaction_step_ms / 1000)
            self._kill_switch.reached("before_kafka_commit")
            transactions.commit(self.producer, self.policy.transaction_step_ms)
            self._phase.enter("committed")
            self._kill_switch.reached("after_kafka_commit")
        except ProducerFencedError:
            log.error("another worker took this worker's transactional id; stopping")
            self.stopping = True
            raise
        except KafkaError as exc:
            log.warning("transaction failed, will retry the batch: %s", exc)
            self._abort_and_rewind()
            return
        self._published = published
        # Deleted in the next batch's transaction rather than in one of their
        # own: until then `unpublished` skips them by their sequence numbers.
        for row in pending:
            self._to_forget[row.shard] = self._published[row.shard]

    def _abort_and_rewind(self) -> None:
        try:
            transactions.abort(self.producer, self.policy.transaction_step_ms)
        except KafkaError as exc:
            # The producer's transactional state is unknown: replace it. Its
            # successor's init_transactions fences it and aborts what it left.
            log.warning("abort failed (%s); replacing the producer", exc)
            self._replace_producer()
        time.sleep(0.5)  # a broker or coordinator change: give it a moment, not a spin
        self._take_assignment(rewind=True)

    def _replace_producer(self) -> None:
        with contextlib.suppress(Exception):
            self.producer.close(timeout=5)
        while not self.stopping:
            try:
                self.producer = transactional_producer(self.settings, self._transactional_id)
                self.producer.init_transactions()
                return
            except KafkaError as exc:
                log.warning("transactional producer not ready yet: %s", exc)
                self.last_step_at = time.monotonic()  # retrying is alive, not stuck
                time.sleep(1.0)

    def _take_assignment(self, rewind: bool = False) -> None:
        """Re-read, for every owned partition, where the group stands and which
        outbox rows its committed transaction already published."""
        # A rewind that meets a new assignment from the group takes it too.
        from_the_group = self._listener.changed or not rewind
        self._listener.changed = False
        assignment = set(self.consumer.assignment())
        published: dict[int, int] = {}
        for tp in assignment:
            committed = self._committed(tp)
            seq = outbox.seq_from_metadata(committed.metadata if committed else None)
            published[tp.partition] = max(published.get(tp.partition, 0), seq)
            if not rewind:
                continue
            # After an aborted transaction: read again from the last commit.
            if committed is not None:
                self.consumer.seek(tp, committed.offset)
            else:
                self.consumer.seek_to_beginning(tp)
        if assignment != self._assignment:
            log.info(
                "partitions assigned",
                extra={
                    "worker": self.name,
                    "shards": sorted({tp.partition for tp in assignment}),
                    "partitions": len(assignment),
                },
            )
        self._assignment = assignment
        self._published = published
        shards = {tp.partition for tp in assignment}
        if not from_the_group:
            # Not taken again: the consumer may still list partitions the
            # group has given to another worker since, which must stay fenced.
            try:
                with self._fence.transaction(self.store, shards) as tx:
                    outbox.forget_published(tx, published)
            except ShardFenced as exc:
                self._on_fenced(exc)
            return
        # Taken in the store whenever the group assigns, even nothing: from
        # here on a predecessor still running cannot write to these shards.
        with self.store.transaction() as tx:
            self._fence.take(tx, shards)
            outbox.forget_published(tx, published)

    def _committed(self, tp: TopicPartition) -> OffsetAndMetadata | None:
        for attempt in range(30):
            try:
                result: OffsetAndMetadata | None = self.consumer.committed(
                    tp, metadata=True, timeout_ms=self.policy.client_call_ms
                )
                return result
            except KafkaError as exc:
                # An earlier transaction of this group may still be completing.
                log.info("committed offset for %s not readable yet (%s)", tp, exc)
                time.sleep(min(0.1 * (attempt + 1), 1.0))
        raise RuntimeError(f"could not read the committed offset of {tp}")

    # --- metrics --------------------------------------------------------------------
    def _observe(
        self, outcome: BatchOutcome, pending: list[outbox.OutboxRow], started: float
    ) -> None:
        for (topic, result), count in outcome.outcomes.items():
            metrics.worker_events_total.labels(self.name, topic, result).inc(count)
        for (topic, error), count in outcome.dead_letters.items():
            metrics.dead_letters_total.labels(topic, error).inc(count)
        for code, count in outcome.raised.items():
            metrics.flags_total.labels(code).inc(count)
        for code, count in outcome.cleared.items():
            metrics.flags_cleared_total.labels(code).inc(count)
        published_at = self.clock()
        for row in pending:
            if row.topic == self.settings.topic_flagged and row.accepted_at:
                latency = (published_at - from_text(row.accepted_at)).total_seconds()
                metrics.event_to_flag_seconds.observe(max(latency, 0.0))
        metrics.worker_batch_duration_seconds.labels(self.name).observe(
            time.perf_counter() - started
        )
        if time.monotonic() >= self._next_housekeeping:
            self._next_housekeeping = time.monotonic() + self.policy.housekeeping_seconds
            owned = sorted({tp.partition for tp in self._assignment})
            try:
                removed = prune(
                    self.store,
                    self.settings.ledger_retention_days,
                    self.clock(),
                    guard=lambda tx: self._fence.check(tx, self.store.dialect, owned),
                )
            except ShardFenced as exc:
                self._on_fenced(exc)
                return
            log.info("housekeeping removed %d expired rows", removed)
        if time.monotonic() >= self._next_gauges:
            self._next_gauges = time.monotonic() + self.policy.gauge_seconds
            self._update_gauges()

    def _update_gauges(self) -> None:
        counts = store_counts(self.store)
        metrics.cases_flagged.set(counts.flagged_cases)
        metrics.pending_activations.set(counts.pending_activations)
        if not self._assignment:
            return
        try:
            ends = self.consumer.end_offsets(
                list(self._assignment), timeout_ms=self.policy.client_call_ms
            )
            positions = {
                tp: self.consumer.position(tp, timeout_ms=self.policy.client_call_ms) for tp in ends
            }
            lags = {tp: max(end - positions[tp], 0) for tp, end in ends.items()}
        except KafkaError as exc:
            log.info("consumer lag not measurable now: %s", exc)
            return
        for tp, lag in lags.items():
            metrics.consumer_lag.labels(
                self.settings.consumer_group, tp.topic, str(tp.partition)
            ).set(lag)
        if self._stall_watch.stalled(positions, lags, time.monotonic()):
            log.warning(
                "consumer stalled: records to read and no position moved for %.0f s; replacing it",
                self.policy.stall_seconds,
            )
            self._replace_consumer()

    def _replace_consumer(self) -> None:
        """Leave the group and join again with a new consumer, as a restart
        would; the committed offsets and outbox metadata say where to resume."""
        with contextlib.suppress(Exception):
            self.consumer.close(autocommit=False)
        self._stall_watch.reset()
        self._assignment = set()
        self._listener.restart()
        self.consumer = self._joined_consumer()

    def close(self) -> None:
        log.info("worker stopping", extra={"worker": self.name})
        try:
            self.consumer.close(autocommit=False)
        finally:
            self.producer.close(timeout=10)
            self.store.close()


def _tp_order(tp: TopicPartition) -> tuple[int, str]:
    return tp.partition, tp.topic


def _merge(into: BatchOutcome, other: BatchOutcome) -> None:
    into.outcomes.update(other.outcomes)
    into.dead_letters.update(other.dead_letters)
    into.raised.update(other.raised)
    into.cleared.update(other.cleared)
    into.outbox_rows += other.outbox_rows


def _refuse_producer_time(settings: Settings) -> None:
    """An event's arrival is the broker's append time; on a topic that keeps
    the producer's, a producer would choose its own deadlines."""
    stale = topics_on_producer_time(settings)
    if stale:
        raise RuntimeError(
            f"input topics {', '.join(stale)} keep producers' timestamps: set "
            "message.timestamp.type=LogAppendTime on them (`simguard topics ensure` does)"
        )


def _partitions_of(consumer: KafkaConsumer, topic: str) -> set[int]:
    try:
        return set(consumer.partitions_for_topic(topic) or ())
    except KafkaError:
        return set()
