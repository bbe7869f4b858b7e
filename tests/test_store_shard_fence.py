"""Fencing in the store, on real SQLite and real PostgreSQL: a worker that lost
a shard to another (a zombie) can neither commit a batch for it nor write what
its deadline scan finds, and a successor's take waits for a transaction that
already passed the check instead of overtaking it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import factories
import orjson
import psycopg
import pytest

from schemas import operator_signature
from simguard.partitioning import partition_for_key
from simguard.settings import Settings, load_settings
from simguard.store import Store, StoreConflict, ledger, open_store
from simguard.timefmt import utc_now
from workers.processor import BatchProcessor
from workers.records import RecordInMemory
from workers.shard_fence import ShardFence, ShardFenced

OPERATOR = "52003"
SHARD = 0


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    empty_config = tmp_path / "simguard-test.toml"
    empty_config.write_text("")
    return load_settings(environ={"SIMGUARD_CONFIG": str(empty_config)}).replace(
        operator_signing_secret="store-fence-operator-signing-secret"
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/simguard.db"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


def activation_record(settings: Settings, seed: int) -> RecordInMemory:
    """An activation as its operator produces it, for the `seed`-th SIM on SHARD."""
    number = next(
        n
        for n in range(seed * 1000, seed * 1000 + 1000)
        if partition_for_key(factories.imsi(OPERATOR, n).encode(), settings.topic_partitions)
        == SHARD
    )
    event = factories.valid_activation(
        operator=OPERATOR,
        imsi=factories.imsi(OPERATOR, number),
        iccid=factories.iccid(number),
        msisdn=factories.msisdn(number),
    )
    key, value = event["imsi"].encode(), orjson.dumps(event)
    signature = operator_signature.sign_for(settings.operator_signing_secret, OPERATOR, key, value)
    headers = [(operator_signature.HEADER, signature)]
    return RecordInMemory(settings.topic_activations, SHARD, seed, key, value, headers=headers)


def count(store: Store, table: str) -> int:
    with store.reading() as tx:
        row = tx.fetchone(f"SELECT count(*) FROM {table}")
    assert row is not None
    return int(row[0])


def take(store: Store, fence: ShardFence, shards: list[int]) -> None:
    with store.transaction() as tx:
        fence.take(tx, shards)


def test_a_zombie_that_lost_its_shard_cannot_commit_a_batch(
    store: Store, settings: Settings
) -> None:
    processor = BatchProcessor(settings)
    zombie, successor = ShardFence("w1"), ShardFence("w2")
    take(store, zombie, [SHARD])
    take(store, successor, [SHARD])
    decoded = processor.decode([activation_record(settings, 1)], utc_now())

    with pytest.raises(ShardFenced), zombie.transaction(store, [SHARD]) as tx:
        processor.apply_records(tx, decoded, utc_now())

    assert (count(store, "processed_events"), count(store, "sims"), count(store, "outbox")) == (
        0,
        0,
        0,
    )


def test_a_zombie_deadline_scan_writes_nothing(store: Store, settings: Settings) -> None:
    processor = BatchProcessor(settings)
    zombie, successor = ShardFence("w1"), ShardFence("w2")
    take(store, zombie, [SHARD])
    with zombie.transaction(store, [SHARD]) as tx:
        processor.apply_records(
            tx, processor.decode([activation_record(settings, 1)], utc_now()), utc_now()
        )
    deadlines, outbox_rows = count(store, "deadlines"), count(store, "outbox")
    assert deadlines > 0
    take(store, successor, [SHARD])

    long_after = utc_now() + timedelta(days=2)
    with pytest.raises(ShardFenced), zombie.transaction(store, [SHARD]) as tx:
        processor.apply_due(tx, [SHARD], long_after)

    assert (count(store, "deadlines"), count(store, "outbox")) == (deadlines, outbox_rows)


def test_the_owner_itself_still_commits_after_taking_its_shards_again(
    store: Store, settings: Settings
) -> None:
    processor = BatchProcessor(settings)
    owner = ShardFence("w1")
    take(store, owner, [SHARD])
    take(store, owner, [SHARD])

    with owner.transaction(store, [SHARD]) as tx:
        processor.apply_records(
            tx, processor.decode([activation_record(settings, 1)], utc_now()), utc_now()
        )

    assert count(store, "processed_events") == 1


def test_a_successor_take_waits_for_a_transaction_that_passed_the_check(
    store: Store, store_url: str
) -> None:
    zombie, successor = ShardFence("w1"), ShardFence("w2")
    take(store, zombie, [SHARD])
    taken = threading.Event()

    def successor_takes() -> None:
        own = open_store(store_url, migrate=False)
        try:
            take(own, successor, [SHARD])
            taken.set()
        finally:
            own.close()

    with zombie.transaction(store, [SHARD]) as tx:
        tx.execute(
            "INSERT INTO outbox (shard, seq, topic, msg_key, msg_value, accepted_at) "
            "VALUES (?, 1, 't', NULL, 'v', NULL)",
            (SHARD,),
        )
        thread = threading.Thread(target=successor_takes, daemon=True)
        thread.start()
        time.sleep(0.5)
        assert not taken.is_set(), "the successor took the shard in mid-transaction"
    thread.join(timeout=10)
    assert taken.is_set()

    with pytest.raises(ShardFenced), zombie.transaction(store, [SHARD]):
        pass


@pytest.mark.postgres
def test_a_unique_violation_from_a_racing_writer_is_a_store_conflict_to_run_again(
    postgres_database: str, settings: Settings
) -> None:
    store = open_store(postgres_database)
    processor = BatchProcessor(settings)
    record = activation_record(settings, 1)
    event_id = orjson.loads(record.value or b"{}")["event_id"]
    outcome: list[BaseException | None] = []

    def apply() -> None:
        try:
            with store.transaction() as tx:
                processor.apply_records(tx, processor.decode([record], utc_now()), utc_now())
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)
        finally:
            store.close()

    with psycopg.connect(postgres_database) as racer:
        racer.execute(
            "INSERT INTO processed_events (day, event_key, content_hash) VALUES (%s, %s, %s)",
            (ledger.day_of(utc_now()), ledger.event_key(event_id), b"other"),
        )
        thread = threading.Thread(target=apply, daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _someone_waits_for_a_row(postgres_database):
            time.sleep(0.05)
        racer.commit()
    thread.join(timeout=10)

    assert len(outcome) == 1 and isinstance(outcome[0], StoreConflict), outcome


def _someone_waits_for_a_row(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'transactionid' AND NOT granted"
        ).fetchone()
    return row is not None and row[0] > 0
