"""The worker's loop: poll, process the batch, checkpoint, periodic tasks.

Order of a step, and why (quix-streams' checkpointing, with the store in it):
1. poll a bounded batch (max_poll_records) from the owned partitions;
2. apply it, and the due deadlines, in ONE store transaction, which also
   writes the records it produces to the outbox: state and outputs are durable
   together or not at all;
3. checkpoint (workers/checkpoint.py): publish the outbox in ONE Kafka
   transaction together with the consumed offsets, whose metadata names the
   last outbox row published per shard;
4. forget the published outbox rows (in the next step's store transaction);
5. run the periodic tasks that are due (workers/periodic.py): housekeeping,
   the store's gauges, the consumer's lag and stall watch.
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

from simguard.kafka_clients import manual_commit_consumer, topics_on_producer_time
from simguard.settings import Settings
from simguard.store import StoreConflict, open_store
from simguard.timefmt import from_text, utc_now
from workers import outbox
from workers import worker_metrics as metrics
from workers.assignment_watch import AssignmentWatch
from workers.checkpoint import Checkpoint
from workers.collection import CollectorBetweenSteps
from workers.faults import FaultSwitches
from workers.housekeeping import prune
from workers.partner_links import HeartbeatWatch
from workers.periodic import Every, PeriodicTasks
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
        self._fence = ShardFence(name)
        self._kill_switch = faults.kill
        self._stall_switch = faults.stall
        self._phase = faults.phase
        self._stall_watch = StallWatch(self.policy.stall_seconds)
        # The (operator, status) pairs of simguard_notices_pending set so far.
        self._notice_gauges: set[tuple[str, str]] = set()
        self._deadline_scan = Every(self.policy.deadline_scan_seconds)
        self._housekeeping = PeriodicTasks(
            Every(
                self.policy.housekeeping_seconds,
                first_due_at=time.monotonic() + self.policy.first_housekeeping_seconds,
            ),
            self._prune_expired_rows,
        )
        self._gauges = PeriodicTasks(
            Every(self.policy.gauge_seconds),
            self._update_store_gauges,
            self._export_lag_and_replace_stalled_consumer,
            self._export_partner_link_lag,
        )
        self._heartbeats = HeartbeatWatch(settings)
        self._partner_topics = settings.partner_sighting_topics()
        self.consumer = self._joined_consumer()
        self.checkpoint = Checkpoint(
            settings,
            name,
            self.store,
            self._fence,
            self._listener,
            transaction_step_ms=self.policy.transaction_step_ms,
            client_call_ms=self.policy.client_call_ms,
            kill_switch=self._kill_switch,
            phase=self._phase,
            stopping=lambda: self.stopping,
            keep_alive=self._keep_alive,
        )

    def _keep_alive(self) -> None:
        self.last_step_at = time.monotonic()

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
        """One step, as the module's docstring numbers it: 1 `_poll`; 2, and
        4 for the step before, `_process`; 3 `_checkpoint`; 5 `_run_due_tasks`.

        A rebalance, a step with neither records nor deadlines due, or a
        fenced store transaction ends it early, before the periodic tasks:
        those run only after a store transaction that committed.
        """
        records = self._poll()
        if records is None:
            return
        scan_deadlines = self._deadline_scan.due(time.monotonic())
        if not records and not scan_deadlines:
            return
        started = time.perf_counter()
        processed = self._process(records, scan_deadlines)
        if processed is None:
            return
        outcome, pending = processed
        self._phase.enter("between_commits")
        if records:
            self._kill_switch.reached("after_store_commit")
            self._stall_switch.after_batch(self.consumer)
        if records or pending:
            self._checkpoint(pending)
        self._record_batch_metrics(outcome, pending, started)
        self._run_due_tasks()

    def _poll(self) -> list[Any] | None:
        """The next records in partition order, or None while the group rebalances."""
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
            return None
        if self._listener.changed:
            self.checkpoint.take_assignment(self.consumer)
        return [r for tp in sorted(batch, key=_tp_order) for r in batch[tp]]

    def _process(
        self, records: list[Any], scan_deadlines: bool
    ) -> tuple[BatchOutcome, list[outbox.OutboxRow]] | None:
        """The batch and the due deadlines applied in the store; None when
        the store transaction was fenced (nothing of it kept)."""
        now = self.clock()
        shards = self.checkpoint.shards
        self._phase.enter("in_store_transaction")
        try:
            outcome, pending = self._apply_in_store(records, scan_deadlines, shards, now)
        except ShardFenced as exc:
            self._rejoin_after_fence(exc)
            return None
        self.checkpoint.clear_forget_queue()
        if scan_deadlines:
            self._deadline_scan.restart(time.monotonic())
        return outcome, pending

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
                    self.checkpoint.forget_published(tx)
                    outcome = BatchOutcome()
                    if records:
                        outcome = self.processor.apply_records(tx, decoded, now)
                    if scan_deadlines:
                        _merge(outcome, self.processor.apply_due(tx, shards, now))
                    pending = self.checkpoint.unpublished(tx, shards)
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

    def _checkpoint(self, pending: list[outbox.OutboxRow]) -> None:
        try:
            self.checkpoint.commit(self.consumer, pending)
        except ProducerFencedError:
            self.stopping = True
            raise
        except ShardFenced as exc:
            # The rewind after a failed transaction found a shard taken.
            self._rejoin_after_fence(exc)

    def _rejoin_after_fence(self, exc: ShardFenced) -> None:
        """Another worker owns a shard this one still polls: the group moved on
        without it (a pause longer than the session). Nothing of the batch was
        kept; rejoin, as a restarted worker would, and resume from the
        committed offsets of whatever the group assigns now."""
        log.warning(
            "store transaction fenced (%s); rejoining the group",
            exc,
            extra={"worker": self.name},
        )
        self.checkpoint.clear_forget_queue()
        self._replace_consumer()

    def _replace_consumer(self) -> None:
        """Leave the group and join again with a new consumer, as a restart
        would; the committed offsets and outbox metadata say where to resume."""
        with contextlib.suppress(Exception):
            self.consumer.close(autocommit=False)
        self._stall_watch.reset()
        self.checkpoint.leave_assignment()
        self._listener.restart()
        self.consumer = self._joined_consumer()

    # --- after the batch ------------------------------------------------------------
    def _record_batch_metrics(
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
        for (action, result), count in outcome.decisions.items():
            metrics.case_decisions_total.labels(action, result).inc(count)
        for operator, seconds in outcome.notice_actions:
            metrics.notice_time_to_action_seconds.labels(operator).observe(max(seconds, 0.0))
        for (partner, status), count in outcome.indicators.items():
            metrics.partner_indicators_total.labels(partner, status).inc(count)
        for (topic, result), count in outcome.outcomes.items():
            if topic in self._partner_topics:
                metrics.partner_sightings_total.labels(self._partner_topics[topic], result).inc(
                    count
                )
        published_at = self.clock()
        for row in pending:
            if row.topic == self.settings.topic_flagged and row.accepted_at:
                latency = (published_at - from_text(row.accepted_at)).total_seconds()
                metrics.event_to_flag_seconds.observe(max(latency, 0.0))
        metrics.worker_batch_duration_seconds.labels(self.name).observe(
            time.perf_counter() - started
        )

    def _run_due_tasks(self) -> None:
        """Housekeeping, then the gauges and the stall watch, each when due.

        Housekeeping fenced out of a shard rejoins the group; the gauges wait
        for the next step, as a consumer that has just been replaced has
        neither an assignment nor a lag to report.
        """
        try:
            self._housekeeping.run_if_due(time.monotonic())
            self._gauges.run_if_due(time.monotonic())
        except ShardFenced as exc:
            self._rejoin_after_fence(exc)

    def _prune_expired_rows(self) -> None:
        """Raises ShardFenced if another worker took one of this one's shards."""
        owned = self.checkpoint.shards
        removed = prune(
            self.store,
            self.settings.ledger_retention_days,
            self.clock(),
            guard=lambda tx: self._fence.check(tx, owned),
            report_retention_days=self.settings.usage_report_retention_days,
        )
        log.info("housekeeping removed %d expired rows", removed)

    def _update_store_gauges(self) -> None:
        counts = store_counts(self.store)
        metrics.cases_flagged.set(counts.flagged_cases)
        metrics.pending_activations.set(counts.pending_activations)
        # A pair no longer counted is zero now, not its last value.
        for operator, status in self._notice_gauges - counts.pending_notices.keys():
            metrics.notices_pending.labels(operator, status).set(0)
        for (operator, status), count in counts.pending_notices.items():
            metrics.notices_pending.labels(operator, status).set(count)
        self._notice_gauges = set(counts.pending_notices)

    def _export_lag_and_replace_stalled_consumer(self) -> None:
        assignment = self.checkpoint.assignment
        if not assignment:
            return
        try:
            ends = self.consumer.end_offsets(
                list(assignment), timeout_ms=self.policy.client_call_ms
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

    def _export_partner_link_lag(self) -> None:
        try:
            newest = self._heartbeats.newest_ms()
        except KafkaError as exc:
            log.warning("could not read the partner links' heartbeats: %s", exc)
            return
        now_ms = self.clock().timestamp() * 1000
        for partner, at_ms in newest.items():
            metrics.partner_link_lag_seconds.labels(partner).set(max(now_ms - at_ms, 0) / 1000)

    def close(self) -> None:
        log.info("worker stopping", extra={"worker": self.name})
        try:
            self.consumer.close(autocommit=False)
            self._heartbeats.close()
        finally:
            self.checkpoint.close()
            self.store.close()


def _tp_order(tp: TopicPartition) -> tuple[int, str]:
    return tp.partition, tp.topic


def _merge(into: BatchOutcome, other: BatchOutcome) -> None:
    into.outcomes.update(other.outcomes)
    into.dead_letters.update(other.dead_letters)
    into.raised.update(other.raised)
    into.cleared.update(other.cleared)
    into.decisions.update(other.decisions)
    into.notice_actions.extend(other.notice_actions)
    into.indicators.update(other.indicators)
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
