"""The checkpoint: what makes a batch, once its store transaction has
committed, visible to the regulator and behind the worker for good.

It owns the transactional producer and what the worker knows of its
assignment: the partitions it owns, and per shard the last outbox row that a
committed Kafka transaction published (read back from the committed offsets'
metadata). The store transaction itself is the loop's; it asks the checkpoint
which rows to forget first and which rows wait to be published last.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, ProducerFencedError
from kafka.structs import OffsetAndMetadata

from simguard.kafka_clients import ensure_notice_topics, transactional_producer
from simguard.settings import Settings
from simguard.store import Store, Tx
from workers import outbox, transactions
from workers.assignment_watch import AssignmentWatch
from workers.faults import KillSwitch, PhaseTrail
from workers.shard_fence import ShardFence

log = logging.getLogger("simguard.worker")

# After a failed transaction: a broker or coordinator is changing; wait a
# moment before the batch is read again rather than spin against it.
REWIND_PAUSE_SECONDS = 0.5
# A committed offset may be unreadable while an earlier transaction of the
# group completes (seconds at most); past 30 tries something else is wrong.
COMMITTED_READ_ATTEMPTS = 30
# Between tries to create a producer while its coordinator is unreachable.
PRODUCER_RETRY_SECONDS = 1.0


class Checkpoint:
    """The Kafka side of a batch: its transaction, and the assignment it commits for."""

    def __init__(
        self,
        settings: Settings,
        worker_name: str,
        store: Store,
        fence: ShardFence,
        listener: AssignmentWatch,
        *,
        transaction_step_ms: int,
        client_call_ms: int,
        kill_switch: KillSwitch,
        phase: PhaseTrail,
        stopping: Callable[[], bool],
        keep_alive: Callable[[], None],
    ) -> None:
        self._settings = settings
        self._worker_name = worker_name
        self._store = store
        self._fence = fence
        self._listener = listener
        self._transaction_step_ms = transaction_step_ms
        self._client_call_ms = client_call_ms
        self._kill_switch = kill_switch
        self._phase = phase
        self._stopping = stopping
        # Waiting for a producer is progress, not a stuck loop (/healthz).
        self._keep_alive = keep_alive
        self._assignment: set[TopicPartition] = set()
        # Output topics known to exist; operators' notice topics are made on
        # their first notice, as operators come and go without a restart, and
        # partners' indicator topics on their first indicator.
        self._existing_topics = set(settings.topics().values())
        # Per shard, the last outbox row a committed transaction published.
        self._published: dict[int, int] = {}
        # Published rows still in the outbox, deleted by the next store
        # transaction rather than by one of their own.
        self._to_forget: dict[int, int] = {}
        # A stable transactional id per worker name: a restarted worker fences
        # and aborts its predecessor's open transaction at once, instead of
        # leaving read_committed readers waiting for the transaction timeout.
        self._transactional_id = f"simguard-{settings.consumer_group}-{worker_name}"
        self.producer = transactional_producer(settings, self._transactional_id)
        self.producer.init_transactions()

    # --- what the worker owns ---------------------------------------------------------
    @property
    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    @property
    def shards(self) -> list[int]:
        return sorted({tp.partition for tp in self._assignment})

    def leave_assignment(self) -> None:
        """The consumer is being replaced: nothing is owned until the group
        assigns again."""
        self._assignment = set()

    def take_assignment(self, consumer: KafkaConsumer, rewind: bool = False) -> None:
        """Re-read, for every owned partition, where the group stands and which
        outbox rows its committed transaction already published. With
        `rewind`, also seek back to the committed offsets; that path may raise
        ShardFenced."""
        # A rewind that meets a new assignment from the group takes it too.
        from_the_group = self._listener.changed or not rewind
        self._listener.changed = False
        assignment = set(consumer.assignment())
        published: dict[int, int] = {}
        for tp in assignment:
            committed = self._committed(consumer, tp)
            seq = outbox.seq_from_metadata(committed.metadata if committed else None)
            published[tp.partition] = max(published.get(tp.partition, 0), seq)
            if not rewind:
                continue
            # After an aborted transaction: read again from the last commit.
            if committed is not None:
                consumer.seek(tp, committed.offset)
            else:
                consumer.seek_to_beginning(tp)
        if assignment != self._assignment:
            log.info(
                "partitions assigned",
                extra={
                    "worker": self._worker_name,
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
            with self._fence.transaction(self._store, shards) as tx:
                outbox.forget_published(tx, published)
            return
        # Taken in the store whenever the group assigns, even nothing: from
        # here on a predecessor still running cannot write to these shards.
        with self._store.transaction() as tx:
            self._fence.take(tx, shards)
            outbox.forget_published(tx, published)

    def _committed(self, consumer: KafkaConsumer, tp: TopicPartition) -> OffsetAndMetadata | None:
        for attempt in range(COMMITTED_READ_ATTEMPTS):
            try:
                result: OffsetAndMetadata | None = consumer.committed(
                    tp, metadata=True, timeout_ms=self._client_call_ms
                )
                return result
            except KafkaError as exc:
                # An earlier transaction of this group may still be completing.
                log.info("committed offset for %s not readable yet (%s)", tp, exc)
                time.sleep(min(0.1 * (attempt + 1), 1.0))
        raise RuntimeError(f"could not read the committed offset of {tp}")

    # --- inside the loop's store transaction ---------------------------------------
    def forget_published(self, tx: Tx) -> None:
        """Delete the rows the last commit published, first in the batch's
        store transaction."""
        if self._to_forget:
            outbox.forget_published(tx, self._to_forget)

    def unpublished(self, tx: Tx, shards: list[int]) -> list[outbox.OutboxRow]:
        """The outbox rows of `shards` waiting to be published, last in the
        batch's store transaction, after the batch has written its own."""
        return outbox.unpublished(tx, shards, self._published, self._settings.topic_rechecks)

    def clear_forget_queue(self) -> None:
        """The store transaction that forgot them committed, or the worker
        rejoins and `take_assignment` forgets what the group's commit names."""
        self._to_forget = {}

    # --- the commit -----------------------------------------------------------------
    def commit(self, consumer: KafkaConsumer, pending: list[outbox.OutboxRow]) -> None:
        """Publish `pending` and the consumer's positions in one Kafka transaction.

        Called only after the batch's store transaction has committed: state
        and outbox rows are durable, so a kill at any step below loses
        nothing; the next owner re-reads the batch (the ledger skips it) and
        publishes the rows still waiting.

        1. Begin the transaction. First, so that every record and offset
           below is part of it and one abort takes all of them back.
        2. Send the outbox rows in shard and sequence order (`unpublished`
           returns them so): a SIM's case records reach the regulator in the
           order their versions were fixed. send() only queues them; step 4
           waits for them.
        3. Add the consumer's positions, just past the batch, as the
           transaction's offsets, each with the last outbox row of its shard
           as metadata. After the sends, because that metadata names the
           rows of step 2: records and offsets commit or abort together, and
           whoever takes the shard over reads which rows are already out
           (they may outlive the commit in the store).
        4. Flush, bounded. After everything is queued, so one wait covers
           every record; before the commit, so a record the broker refused,
           or a broker that stopped answering, fails the batch here, well
           within max.poll.interval. The fault tests' `before_kafka_commit`
           kill lands here: all sent, nothing visible.
        5. Commit, bounded (workers/transactions.py). Last of the Kafka
           steps, since it is what makes records and offsets visible, and
           only together: read_committed readers see the batch from here.
        6. Only then note the rows as published, and queue them to be deleted
           by the next store transaction. After the commit, since a row
           noted as published by a transaction that then aborted would never
           be sent again; in the next store transaction rather than one of
           its own, to save a commit per batch. Until then `unpublished`
           skips them by their sequence numbers, and a kill before the
           deletion leaves rows that step 3's metadata marks as out.

        A ProducerFencedError in 1-5 means another process took this
        worker's transactional id: it propagates, and the worker stops. Any
        other Kafka error aborts the transaction and rewinds the consumer to
        the committed offsets (`_abort_and_rewind`): its positions are past
        the batch, which must be read again; the ledger skips re-applying it
        and its rows, still unpublished, go out with the next commit. A
        rewind that finds one of the worker's shards taken by another worker
        raises ShardFenced.
        """
        published = dict(self._published)
        for row in pending:
            published[row.shard] = max(published.get(row.shard, 0), row.seq)
        missing = {row.topic for row in pending} - self._existing_topics
        if missing:
            try:
                ensure_notice_topics(self._settings, sorted(missing))
            except KafkaError as exc:
                log.warning("could not create the output topics %s: %s", sorted(missing), exc)
                time.sleep(REWIND_PAUSE_SECONDS)
                self.take_assignment(consumer, rewind=True)
                return
            self._existing_topics |= missing
        try:
            # Step 1.
            self.producer.begin_transaction()
            # Step 2.
            for row in pending:
                self.producer.send(
                    row.topic,
                    key=row.key.encode() if row.key is not None else None,
                    value=row.value.encode(),
                    partition=row.partition,
                )
            # Step 3.
            offsets = {
                tp: OffsetAndMetadata(
                    consumer.position(tp, timeout_ms=self._client_call_ms),
                    outbox.metadata_for(published.get(tp.partition, 0)),
                    -1,
                )
                for tp in self._assignment
            }
            if offsets:
                transactions.send_offsets(
                    self.producer, offsets, consumer.group_metadata(), self._transaction_step_ms
                )
            # Step 4.
            self.producer.flush(timeout=self._transaction_step_ms / 1000)
            self._kill_switch.reached("before_kafka_commit")
            # Step 5.
            transactions.commit(self.producer, self._transaction_step_ms)
            self._phase.enter("committed")
            self._kill_switch.reached("after_kafka_commit")
        except ProducerFencedError:
            log.error("another worker took this worker's transactional id; stopping")
            raise
        except KafkaError as exc:
            log.warning("transaction failed, will retry the batch: %s", exc)
            self._abort_and_rewind(consumer)
            return
        # Step 6.
        self._published = published
        for row in pending:
            self._to_forget[row.shard] = self._published[row.shard]

    def _abort_and_rewind(self, consumer: KafkaConsumer) -> None:
        try:
            transactions.abort(self.producer, self._transaction_step_ms)
        except KafkaError as exc:
            # The producer's transactional state is unknown: replace it. Its
            # successor's init_transactions fences it and aborts what it left.
            log.warning("abort failed (%s); replacing the producer", exc)
            self._replace_producer()
        time.sleep(REWIND_PAUSE_SECONDS)
        self.take_assignment(consumer, rewind=True)

    def _replace_producer(self) -> None:
        with contextlib.suppress(Exception):
            self.producer.close(timeout=5)
        while not self._stopping():
            try:
                self.producer = transactional_producer(self._settings, self._transactional_id)
                self.producer.init_transactions()
                return
            except KafkaError as exc:
                log.warning("transactional producer not ready yet: %s", exc)
                self._keep_alive()
                time.sleep(PRODUCER_RETRY_SECONDS)

    def close(self) -> None:
        self.producer.close(timeout=10)
