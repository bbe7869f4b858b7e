"""A regulator's decisions as the worker applies them: what a dismissal,
confirmation or stale decision does to a SIM's case, and what comes back on
the evidence already seen and on new evidence. The batch processor on a real
SQLite file and a real PostgreSQL database, with records built in memory."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
from test_batch_processor import BATCH_CLOCK, IMSI, OPERATOR, signed

from schemas import attestation
from schemas.case_record import CaseRecordSchema
from simguard.partitioning import partition_for_key
from simguard.settings import Settings, load_settings
from simguard.store import Store, open_store
from workers.processor import BatchOutcome, BatchProcessor
from workers.records import RecordInMemory

GRACE = timedelta(minutes=15, seconds=1)
DECIDED_AT = BATCH_CLOCK + timedelta(minutes=20)
EXPIRES_AT = datetime(2026, 12, 2, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    config = tmp_path / "simguard-test.toml"
    config.write_text("")
    return load_settings(environ={"SIMGUARD_CONFIG": str(config)}).replace(
        operator_signing_secret="case-decisions-operator-signing-secret",
        attestation_secret="case-decisions-attestation-secret",
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path}/simguard.db")
    yield opened
    opened.close()


def _text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def decision_record(
    settings: Settings, action: str = "dismiss", case_version: int = 1, **overrides: Any
) -> RecordInMemory:
    """A decision as the API publishes it: signed with the API's attestation."""
    dismissal = action == "dismiss"
    decision = {
        "decision_id": str(uuid.uuid4()),
        "imsi": IMSI,
        "action": action,
        "case_version": case_version,
        "reason": "Verified in person: a border trader." if dismissal else None,
        "codes": ["UNREGISTERED"] if dismissal else [],
        "expires_at": _text(EXPIRES_AT) if dismissal else None,
        "decided_by": "regulator-key-1",
        "decided_at": _text(DECIDED_AT),
    } | overrides
    value = orjson.dumps(decision)
    key = IMSI.encode()
    return RecordInMemory(
        settings.topic_decisions,
        partition_for_key(key, settings.topic_partitions),
        0,
        key,
        value,
        timestamp=int(DECIDED_AT.timestamp() * 1000),
        headers=[(attestation.HEADER, attestation.sign(settings.attestation_secret, value))],
    )


def activation(settings: Settings, at: datetime) -> RecordInMemory:
    event = factories.valid_activation(operator=OPERATOR, imsi=IMSI, activated_at=_text(at))
    return signed(settings, settings.topic_activations, event, at=at)


def run(
    store: Store, settings: Settings, records: list[RecordInMemory], clock: datetime
) -> BatchOutcome:
    processor = BatchProcessor(settings)
    with store.transaction() as tx:
        return processor.apply_records(tx, processor.decode(records, clock), clock)


def run_due(store: Store, settings: Settings, clock: datetime) -> None:
    with store.transaction() as tx:
        BatchProcessor(settings).apply_due(tx, range(settings.topic_partitions), clock)


def flagged_unregistered(store: Store, settings: Settings, at: datetime = BATCH_CLOCK) -> None:
    """Case version 1: the SIM flagged UNREGISTERED at its activation's deadline."""
    run(store, settings, [activation(settings, at)], at)
    run_due(store, settings, at + GRACE)


def case(store: Store) -> dict[str, Any]:
    with store.reading() as tx:
        (record,) = tx.fetchone("SELECT case_record FROM sims WHERE imsi = ?", (IMSI,)) or ()
    loaded: dict[str, Any] = orjson.loads(record)
    return loaded


def published(store: Store, topic: str) -> list[dict[str, Any]]:
    with store.reading() as tx:
        rows = tx.fetchall("SELECT msg_value FROM outbox WHERE topic = ? ORDER BY seq", (topic,))
    return [orjson.loads(value) for (value,) in rows]


def audit_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.reading() as tx:
        return tx.fetchall(
            "SELECT action, case_version, outcome, resulting_version FROM case_decisions "
            "ORDER BY applied_at, decision_id"
        )


def test_a_dismissal_clears_the_case_with_the_decision_in_the_record(
    store_on_each_backend: Store, settings: Settings
) -> None:
    store = store_on_each_backend
    flagged_unregistered(store, settings)
    dismissal = decision_record(settings)

    run(store, settings, [dismissal], DECIDED_AT)

    record = case(store)
    assert (record["version"], record["status"], record["reasons"]) == (2, "cleared", [])
    decision = orjson.loads(dismissal.value or b"")
    assert record["decision"]["decision_id"] == decision["decision_id"]
    assert record["decision"]["codes"] == ["UNREGISTERED"]
    assert record["schema_version"] == 2
    CaseRecordSchema().load(record)


def test_an_applied_decision_is_audited_on_the_audit_topic_and_in_the_store(
    store_on_each_backend: Store, settings: Settings
) -> None:
    store = store_on_each_backend
    flagged_unregistered(store, settings)
    dismissal = decision_record(settings)

    run(store, settings, [dismissal], DECIDED_AT)

    assert audit_rows(store) == [("dismiss", 1, "applied", 2)]
    (audited,) = published(store, settings.topic_decisions_audit)
    sent = orjson.loads(dismissal.value or b"")
    assert audited == {
        **sent,
        "expires_at": "2026-12-02T00:00:00.000000Z",
        "decided_at": "2026-11-02T04:20:00.000000Z",
        "outcome": "applied",
        "applied_at": "2026-11-02T04:20:00.000000Z",
        "resulting_version": 2,
    }


def test_a_dismissed_reason_is_not_raised_again_by_the_evidence_already_seen(
    store_on_each_backend: Store, settings: Settings
) -> None:
    store = store_on_each_backend
    flagged_unregistered(store, settings)
    run(store, settings, [decision_record(settings)], DECIDED_AT)
    later = DECIDED_AT + timedelta(hours=1)
    observation = factories.valid_network_event(
        operator=OPERATOR, imsi=IMSI, observed_at=_text(later)
    )

    run(store, settings, [signed(settings, settings.topic_network_events, observation)], later)
    run_due(store, settings, later + timedelta(days=1))

    assert (case(store)["version"], case(store)["status"]) == (2, "cleared")


def test_a_new_activation_left_unregistered_flags_a_dismissed_sim_again(
    store_on_each_backend: Store, settings: Settings
) -> None:
    store = store_on_each_backend
    flagged_unregistered(store, settings)
    run(store, settings, [decision_record(settings)], DECIDED_AT)
    second = DECIDED_AT + timedelta(hours=1)

    flagged_unregistered(store, settings, at=second)

    record = case(store)
    assert (record["version"], record["status"]) == (3, "flagged")
    (reason,) = record["reasons"]
    assert reason["since"] == "2026-11-02T05:35:00.000000Z"


def test_a_dismissal_lapses_at_its_expiry_and_a_reason_still_held_is_raised_again(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    expiry = DECIDED_AT + timedelta(days=2)
    run(store, settings, [decision_record(settings, expires_at=_text(expiry))], DECIDED_AT)

    run_due(store, settings, expiry - timedelta(seconds=1))
    assert case(store)["status"] == "cleared"
    run_due(store, settings, expiry + timedelta(seconds=1))

    record = case(store)
    assert (record["version"], record["status"]) == (3, "flagged")
    assert [r["code"] for r in record["reasons"]] == ["UNREGISTERED"]


def test_a_decision_on_a_case_that_moved_on_changes_nothing_and_is_audited_stale(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)

    run(store, settings, [decision_record(settings, case_version=2)], DECIDED_AT)

    assert case(store)["version"] == 1
    assert audit_rows(store) == [("dismiss", 2, "stale_case_version", None)]


def test_the_second_of_two_decisions_on_one_version_in_one_batch_is_stale(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    confirm = decision_record(settings, action="confirm", decided_at=_text(DECIDED_AT))
    escalate = decision_record(
        settings, action="escalate", decided_at=_text(DECIDED_AT + timedelta(seconds=1))
    )

    run(store, settings, [confirm, escalate], DECIDED_AT)

    assert case(store)["version"] == 2
    assert sorted(audit_rows(store)) == [
        ("confirm", 1, "applied", 2),
        ("escalate", 1, "stale_case_version", None),
    ]


def test_a_confirmation_keeps_the_reasons_and_records_the_decision(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)

    run(store, settings, [decision_record(settings, action="confirm")], DECIDED_AT)

    record = case(store)
    assert (record["version"], record["status"]) == (2, "flagged")
    assert [r["code"] for r in record["reasons"]] == ["UNREGISTERED"]
    assert record["decision"]["action"] == "confirm"


def test_a_resent_decision_is_a_duplicate_that_changes_nothing(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    dismissal = decision_record(settings)
    run(store, settings, [dismissal], DECIDED_AT)

    outcome = run(store, settings, [dismissal], DECIDED_AT + timedelta(minutes=1))

    assert outcome.outcomes == {(settings.topic_decisions, "duplicate"): 1}
    assert case(store)["version"] == 2
    assert len(audit_rows(store)) == 1


def test_a_decision_id_resent_with_other_content_is_dead_lettered(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    dismissal = decision_record(settings)
    run(store, settings, [dismissal], DECIDED_AT)
    sent = orjson.loads(dismissal.value or b"")
    other = decision_record(settings, decision_id=sent["decision_id"], reason="Another reason.")

    outcome = run(store, settings, [other], DECIDED_AT + timedelta(minutes=1))

    assert outcome.dead_letters == {(settings.topic_decisions, "decision_id_conflict"): 1}
    assert len(audit_rows(store)) == 1


def test_a_decision_the_api_did_not_sign_is_dead_lettered_and_changes_nothing(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    forged = decision_record(settings)
    forged.headers = [(attestation.HEADER, b"0" * 64)]

    outcome = run(store, settings, [forged], DECIDED_AT)

    assert outcome.dead_letters == {(settings.topic_decisions, "invalid_decision"): 1}
    assert case(store)["version"] == 1
    assert audit_rows(store) == []
