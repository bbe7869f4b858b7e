"""`BatchProcessor` alone, on a real SQLite file, with records built in memory."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest

from schemas import operator_signature
from simguard.partitioning import partition_for_key
from simguard.settings import Settings, load_settings
from simguard.store import Store, ledger, open_store
from workers.processor import BatchOutcome, BatchProcessor
from workers.records import RecordInMemory
from workers.state import SimState

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


IMSI = factories.imsi(OPERATOR, 11)


def signed(
    settings: Settings,
    topic: str,
    event: dict[str, Any],
    offset: int = 0,
    at: datetime = BATCH_CLOCK,
) -> RecordInMemory:
    """The record an operator produces straight to Kafka, signed with its key."""
    key, value = event["imsi"].encode(), orjson.dumps(event)
    signature = operator_signature.sign_for(settings.operator_signing_secret, OPERATOR, key, value)
    return RecordInMemory(
        topic,
        partition_for_key(key, settings.topic_partitions),
        offset,
        key,
        value,
        timestamp=int(at.timestamp() * 1000),
        headers=[(operator_signature.HEADER, signature)],
    )


def signed_activation(settings: Settings, **overrides: Any) -> RecordInMemory:
    event = factories.valid_activation(operator=OPERATOR, imsi=IMSI, **overrides)
    return signed(settings, settings.topic_activations, event)


def apply(
    store: Store, settings: Settings, records: list[RecordInMemory], clock: datetime = BATCH_CLOCK
) -> BatchOutcome:
    processor = BatchProcessor(settings)
    with store.transaction() as tx:
        return processor.apply_records(tx, processor.decode(records, clock), clock)


def test_the_ledger_files_each_event_under_the_day_of_the_batchs_clock(
    store: Store, settings: Settings
) -> None:
    processor = BatchProcessor(settings)
    decoded = processor.decode([signed_activation(settings)], BATCH_CLOCK)
    with store.transaction() as tx:
        processor.apply_records(tx, decoded, BATCH_CLOCK)

    with store.reading() as tx:
        rows = tx.fetchall("SELECT day FROM processed_events")
    assert rows == [(ledger.day_of(BATCH_CLOCK),)]


def resent(settings: Settings, record: RecordInMemory, at: datetime) -> RecordInMemory:
    return signed(settings, record.topic, orjson.loads(record.value or b""), offset=1, at=at)


def test_a_resend_on_the_last_day_of_the_ledgers_window_is_a_duplicate(
    store: Store, settings: Settings
) -> None:
    first = signed_activation(settings)
    apply(store, settings, [first])
    later = BATCH_CLOCK + timedelta(days=settings.ledger_retention_days)

    outcome = apply(store, settings, [resent(settings, first, later)], clock=later)

    assert outcome.outcomes == {(first.topic, "duplicate"): 1}


def test_an_activation_resent_after_the_ledgers_window_is_not_judged_again(
    store: Store, settings: Settings
) -> None:
    first = signed_activation(settings)
    apply(store, settings, [first])
    judged = BATCH_CLOCK + timedelta(seconds=settings.rules.unregistered_grace_seconds + 1)
    with store.transaction() as tx:
        BatchProcessor(settings).apply_due(tx, [first.partition], judged)
    later = BATCH_CLOCK + timedelta(days=settings.ledger_retention_days + 1)

    outcome = apply(store, settings, [resent(settings, first, later)], clock=later)

    # The ledger has forgotten it; the SIM has not, and sets no second deadline.
    assert outcome.outcomes == {(first.topic, "applied"): 1}
    with store.reading() as tx:
        assert tx.fetchall("SELECT imsi, kind FROM deadlines WHERE kind = 'unregistered'") == []
        (state,) = tx.fetchone("SELECT state FROM sims") or ()
    assert SimState.from_row(IMSI, 0, state).pending_activations == {}


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
        (published,) = tx.fetchone(
            "SELECT msg_value FROM outbox WHERE topic = ? ORDER BY seq DESC LIMIT 1",
            (settings.topic_flagged,),
        )
    assert case_status == "flagged"
    assert orjson.loads(case_record) == orjson.loads(published)


def test_a_resend_in_the_same_batch_is_a_duplicate_applied_once(
    store: Store, settings: Settings
) -> None:
    first = signed_activation(settings)
    resend = signed(settings, first.topic, orjson.loads(first.value or b""), offset=1)

    outcome = apply(store, settings, [first, resend])

    assert outcome.outcomes == {(first.topic, "applied"): 1, (first.topic, "duplicate"): 1}
    with store.reading() as tx:
        assert tx.fetchall("SELECT count(*) FROM deadlines") == [(1,)]


def test_an_event_id_resent_with_other_content_is_dead_lettered_and_not_applied(
    store: Store, settings: Settings
) -> None:
    first = signed_activation(settings)
    event = orjson.loads(first.value or b"")
    conflicting = signed(settings, first.topic, {**event, "channel": "online"}, offset=1)
    apply(store, settings, [first])

    outcome = apply(store, settings, [conflicting])

    assert outcome.dead_letters == {(first.topic, "event_id_conflict"): 1}
    with store.reading() as tx:
        (state,) = tx.fetchone("SELECT state FROM sims") or ()
    assert list(SimState.from_row(IMSI, 0, state).pending_activations) == [event["event_id"]]


def test_a_registration_in_the_activations_batch_leaves_no_unregistered_deadline(
    store: Store, settings: Settings
) -> None:
    activation = signed_activation(settings)
    registration = signed(
        settings,
        settings.topic_registrations,
        factories.valid_registration_wire(operator=OPERATOR, imsi=IMSI),
    )

    outcome = apply(store, settings, [activation, registration])

    assert outcome.outcomes[(registration.topic, "applied")] == 1
    with store.reading() as tx:
        assert tx.fetchall("SELECT imsi, kind FROM deadlines") == []
        (state,) = tx.fetchone("SELECT state FROM sims") or ()
    assert SimState.from_row(IMSI, 0, state).pending_activations == {}


def test_a_recheck_for_a_sim_without_events_writes_its_state(
    store: Store, settings: Settings
) -> None:
    payload = {"imsi": IMSI, "check": "holder"}
    recheck = RecordInMemory(
        settings.topic_rechecks,
        partition_for_key(IMSI.encode(), settings.topic_partitions),
        0,
        IMSI.encode(),
        orjson.dumps(payload),
    )

    outcome = apply(store, settings, [recheck])

    assert outcome.outcomes == {(settings.topic_rechecks, "applied"): 1}
    with store.reading() as tx:
        assert tx.fetchall("SELECT imsi, case_status FROM sims") == [(IMSI, None)]
