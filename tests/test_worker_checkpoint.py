"""The checkpoint on its own, on the session's real broker and a real SQLite
store: what a committed checkpoint makes visible and durable, what an aborted
one leaves behind, and what a worker taking an assignment learns from the
group's committed offsets."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.coordinator.assignors.range import RangePartitionAssignor
from kafka.errors import ProducerFencedError
from kafka.structs import OffsetAndMetadata
from kafka_helpers import MakeSettings, read_all
from worker_helpers import wait_for

from simguard.kafka_clients import (
    admin_client,
    manual_commit_consumer,
    reliable_producer,
    transactional_producer,
)
from simguard.settings import Settings
from simguard.store import Store, open_store
from workers import outbox
from workers.assignment_watch import AssignmentWatch
from workers.checkpoint import Checkpoint
from workers.faults import KillSwitch, PhaseTrail
from workers.outbox import OutboxRow, OutboxWriter
from workers.shard_fence import ShardFence, ShardFenced

SHARD = 0
IMSI = "520030000000001"
# Past the producer's max_request_size (1 MiB): send() refuses it at once, a
# Kafka error raised by the real producer inside the transaction.
TOO_LARGE_VALUE = "x" * (2 * 1024 * 1024)


@dataclass
class Worker:
    """A checkpoint as a worker holds it: its consumer in the group, its fence."""

    checkpoint: Checkpoint
    consumer: KafkaConsumer
    fence: ShardFence

    def poll(self, count: int, timeout: float = 20.0) -> list[Any]:
        """At least `count` records, as the loop's poll would read them."""
        records: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(records) < count and time.monotonic() < deadline:
            batch = self.consumer.poll(timeout_ms=200)
            records.extend(record for partition in batch.values() for record in partition)
        assert len(records) >= count, f"polled {len(records)} of {count} records"
        return records

    def positions(self) -> dict[TopicPartition, int]:
        return {tp: self.consumer.position(tp) for tp in self.checkpoint.assignment}


StartWorker = Callable[..., Worker]


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    opened = open_store(settings.database_url)
    yield opened
    opened.close()


@pytest.fixture
def start_worker(settings: Settings, store: Store) -> Iterator[StartWorker]:
    """`start_worker(name="w1") -> Worker`: joined, every input partition
    assigned to it, and the assignment taken as the loop takes it."""
    started: list[Worker] = []

    def start(name: str = "w1") -> Worker:
        listener = AssignmentWatch()
        consumer = manual_commit_consumer(
            settings,
            group_id=settings.consumer_group,
            client_id=name,
            partition_assignment_strategy=[RangePartitionAssignor],
            session_timeout_ms=10_000,
            heartbeat_interval_ms=1_000,
        )
        deadline = time.monotonic() + 30
        # As the loop does: a leader without the topics' metadata assigns nothing.
        while not all(consumer.partitions_for_topic(topic) for topic in settings.input_topics()):
            assert time.monotonic() < deadline, "input topics unknown after 30 s"
            time.sleep(0.1)
        consumer.subscribe(settings.input_topics(), listener=listener)
        while listener.rebalancing or not consumer.assignment():
            assert time.monotonic() < deadline, "no assignment within 30 s"
            assert not consumer.poll(timeout_ms=200), "a test's records came before it joined"
        fence = ShardFence(name)
        checkpoint = Checkpoint(
            settings,
            name,
            store,
            fence,
            listener,
            transaction_step_ms=15_000,
            client_call_ms=10_000,
            kill_switch=KillSwitch({}),
            phase=PhaseTrail({}),
            stopping=lambda: False,
            keep_alive=lambda: None,
        )
        checkpoint.take_assignment(consumer)
        worker = Worker(checkpoint, consumer, fence)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.consumer.close(autocommit=False)
        worker.checkpoint.close()


def produce_inputs(settings: Settings, count: int) -> None:
    """`count` records on the activations topic, spread over its partitions.
    The checkpoint never reads them: only their offsets matter."""
    producer = reliable_producer(settings)
    try:
        for index in range(count):
            producer.send(
                settings.topic_activations,
                value=f"input-{index}".encode(),
                partition=index % settings.topic_partitions,
            )
        producer.flush(timeout=10)
    finally:
        producer.close(timeout=5)


def store_outbox_rows(
    settings: Settings, store: Store, worker: Worker, values: list[str]
) -> list[OutboxRow]:
    """Outbox rows of SHARD written as a batch's store transaction writes
    them, and what waits to be published after it, as the loop asks."""
    writer = OutboxWriter()
    for value in values:
        writer.add(SHARD, settings.topic_flagged, IMSI, value)
    with store.transaction() as tx:
        writer.write(tx)
        return worker.checkpoint.unpublished(tx, worker.checkpoint.shards)


def too_large_row(settings: Settings) -> OutboxRow:
    return OutboxRow(SHARD, 10_000, settings.topic_flagged, IMSI, TOO_LARGE_VALUE, None)


def outbox_seqs(store: Store) -> list[int]:
    with store.transaction() as tx:
        rows = tx.fetchall("SELECT seq FROM outbox WHERE shard = ? ORDER BY seq", (SHARD,))
    return [int(seq) for (seq,) in rows]


def flagged_values(settings: Settings) -> list[str]:
    return [record.value.decode() for record in read_all(settings, settings.topic_flagged)]


def group_offsets(settings: Settings) -> dict[TopicPartition, OffsetAndMetadata]:
    admin = admin_client(settings)
    try:
        offsets: dict[TopicPartition, OffsetAndMetadata] = admin.list_group_offsets(
            settings.consumer_group
        )[settings.consumer_group]
        return offsets
    finally:
        admin.close()


def committed_positions(settings: Settings) -> dict[TopicPartition, int]:
    return {tp: committed.offset for tp, committed in group_offsets(settings).items()}


def test_a_committed_checkpoint_publishes_its_rows_to_read_committed_readers(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    pending = store_outbox_rows(settings, store, worker, ["first", "second", "third"])

    worker.checkpoint.commit(worker.consumer, pending)

    assert flagged_values(settings) == ["first", "second", "third"]


def test_a_committed_checkpoint_commits_the_consumers_positions_for_the_group(
    settings: Settings, start_worker: StartWorker
) -> None:
    worker = start_worker()
    produce_inputs(settings, 6)
    worker.poll(6)

    worker.checkpoint.commit(worker.consumer, [])

    positions = worker.positions()
    assert sum(positions.values()) == 6
    assert wait_for(lambda: committed_positions(settings) == positions, timeout=10), (
        committed_positions(settings)
    )


def test_the_committed_offsets_name_the_last_published_row_of_their_shard(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    pending = store_outbox_rows(settings, store, worker, ["first", "second"])

    worker.checkpoint.commit(worker.consumer, pending)

    expected = {
        tp: outbox.metadata_for(pending[-1].seq if tp.partition == SHARD else 0)
        for tp in worker.checkpoint.assignment
    }
    assert wait_for(
        lambda: {tp: c.metadata for tp, c in group_offsets(settings).items()} == expected,
        timeout=10,
    ), group_offsets(settings)


def test_published_rows_wait_in_the_outbox_unoffered_until_the_next_store_transaction(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    pending = store_outbox_rows(settings, store, worker, ["first", "second"])

    worker.checkpoint.commit(worker.consumer, pending)

    with store.transaction() as tx:
        assert worker.checkpoint.unpublished(tx, worker.checkpoint.shards) == []
    assert outbox_seqs(store) == [row.seq for row in pending]


def test_the_next_store_transaction_forgets_the_rows_the_last_commit_published(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    worker.checkpoint.commit(worker.consumer, store_outbox_rows(settings, store, worker, ["a"]))
    later = store_outbox_rows(settings, store, worker, ["b"])

    with store.transaction() as tx:
        worker.checkpoint.forget_published(tx)

    assert outbox_seqs(store) == [row.seq for row in later]


def test_an_aborted_checkpoint_publishes_nothing(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    pending = store_outbox_rows(settings, store, worker, ["first"])

    worker.checkpoint.commit(worker.consumer, [*pending, too_large_row(settings)])

    assert flagged_values(settings) == []


def test_an_aborted_checkpoint_rewinds_the_consumer_to_the_committed_offsets(
    settings: Settings, start_worker: StartWorker
) -> None:
    worker = start_worker()
    produce_inputs(settings, 3)
    worker.poll(3)
    worker.checkpoint.commit(worker.consumer, [])
    committed = worker.positions()
    produce_inputs(settings, 3)
    worker.poll(3)
    assert worker.positions() != committed

    worker.checkpoint.commit(worker.consumer, [too_large_row(settings)])

    assert worker.positions() == committed


def test_an_aborted_checkpoint_leaves_the_group_offsets_where_they_were(
    settings: Settings, start_worker: StartWorker
) -> None:
    worker = start_worker()
    produce_inputs(settings, 3)
    worker.poll(3)
    worker.checkpoint.commit(worker.consumer, [])
    committed = worker.positions()
    assert wait_for(lambda: committed_positions(settings) == committed, timeout=10)
    produce_inputs(settings, 3)
    worker.poll(3)

    worker.checkpoint.commit(worker.consumer, [too_large_row(settings)])

    assert committed_positions(settings) == committed


def test_the_rows_of_an_aborted_checkpoint_go_out_once_with_the_next_commit(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    pending = store_outbox_rows(settings, store, worker, ["first", "second"])
    worker.checkpoint.commit(worker.consumer, [*pending, too_large_row(settings)])

    with store.transaction() as tx:
        offered_again = worker.checkpoint.unpublished(tx, worker.checkpoint.shards)
    worker.checkpoint.commit(worker.consumer, offered_again)

    assert offered_again == pending
    assert flagged_values(settings) == ["first", "second"]


def test_a_successor_taking_the_assignment_forgets_what_its_predecessor_published(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    # The predecessor dies between its Kafka commit and the store transaction
    # that would have deleted the rows: only the committed metadata says so.
    predecessor = start_worker("w1")
    predecessor.checkpoint.commit(
        predecessor.consumer, store_outbox_rows(settings, store, predecessor, ["a", "b"])
    )
    predecessor.consumer.close(autocommit=False)
    waiting = store_outbox_rows(settings, store, predecessor, ["c"])

    successor = start_worker("w2")

    assert outbox_seqs(store) == [row.seq for row in waiting]
    with store.transaction() as tx:
        assert successor.checkpoint.unpublished(tx, successor.checkpoint.shards) == waiting


def test_taking_an_assignment_from_the_group_takes_its_shards_in_the_store(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()

    with store.transaction() as tx:
        owners = dict(tx.fetchall("SELECT shard, owner FROM shard_owners"))

    assert worker.checkpoint.shards == list(range(settings.topic_partitions))
    assert owners == {shard: worker.fence.owner for shard in worker.checkpoint.shards}


def test_a_rewind_after_another_worker_took_a_shard_raises_shard_fenced(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    worker = start_worker()
    with store.transaction() as tx:
        ShardFence("intruder").take(tx, [SHARD])

    with pytest.raises(ShardFenced):
        worker.checkpoint.commit(worker.consumer, [too_large_row(settings)])


def test_a_worker_restarted_under_the_same_name_fences_its_predecessors_transactions(
    settings: Settings, store: Store, start_worker: StartWorker
) -> None:
    predecessor = start_worker("w1")
    pending = store_outbox_rows(settings, store, predecessor, ["from the predecessor"])
    # What the restarted worker's checkpoint does first, under the same name.
    successor = transactional_producer(settings, f"simguard-{settings.consumer_group}-w1")
    try:
        successor.init_transactions()

        with pytest.raises(ProducerFencedError):
            predecessor.checkpoint.commit(predecessor.consumer, pending)
    finally:
        successor.close(timeout=5)
    assert flagged_values(settings) == []
