"""`BatchProcessor` alone, on a real SQLite file, with records built in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
import orjson
import pytest
from in_memory_records import InMemoryRecord

from schemas import operator_signature
from simguard.partitioning import partition_for_key
from simguard.settings import Settings, load_settings
from simguard.store import Store, open_store
from simguard.timefmt import from_text
from workers.processor import BatchProcessor

OPERATOR = "52003"
# An hour after the factories' event time: the events are not in the future.
BATCH_CLOCK = datetime(2026, 11, 2, 4, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    empty_config = tmp_path / "simguard-test.toml"
    empty_config.write_text("")
    return load_settings(environ={"SIMGUARD_CONFIG": str(empty_config)}).replace(
        operator_signing_secret="batch-processor-operator-signing-secret"
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/simguard.db")
    yield opened
    opened.close()


def signed_activation(settings: Settings) -> InMemoryRecord:
    event = factories.valid_activation(operator=OPERATOR, imsi=factories.imsi(OPERATOR, 11))
    key, value = event["imsi"].encode(), orjson.dumps(event)
    signature = operator_signature.sign_for(settings.operator_signing_secret, OPERATOR, key, value)
    return InMemoryRecord(
        settings.topic_activations,
        partition_for_key(key, settings.topic_partitions),
        0,
        key,
        value,
        timestamp=int(BATCH_CLOCK.timestamp() * 1000),
        headers=[(operator_signature.HEADER, signature)],
    )


def test_the_ledger_stamps_each_event_with_the_batchs_clock(
    store: Store, settings: Settings
) -> None:
    processor = BatchProcessor(settings)
    decoded = processor.decode([signed_activation(settings)], BATCH_CLOCK)
    with store.transaction() as tx:
        processor.apply_records(tx, decoded, BATCH_CLOCK)

    with store.reading() as tx:
        rows = tx.fetchall("SELECT processed_at FROM processed_events")
    assert [from_text(row[0]) for row in rows] == [BATCH_CLOCK]


def test_the_published_case_record_is_also_the_sims_case_record_column(
    store: Store, settings: Settings
) -> None:
    processor = BatchProcessor(settings)
    record = signed_activation(settings)
    with store.transaction() as tx:
        processor.apply_records(tx, processor.decode([record], BATCH_CLOCK), BATCH_CLOCK)
    judged = BATCH_CLOCK + timedelta(seconds=settings.rules.unregistered_grace_seconds + 1)
    with store.transaction() as tx:
        processor.apply_due(tx, [record.partition], judged)

    with store.reading() as tx:
        ((case_status, case_record),) = tx.fetchall("SELECT case_status, case_record FROM sims")
        (published,) = tx.fetchone("SELECT msg_value FROM outbox ORDER BY seq DESC LIMIT 1")
    assert case_status == "flagged"
    assert orjson.loads(case_record) == orjson.loads(published)
