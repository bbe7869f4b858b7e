"""UNREGISTERED, IDENTITY_OVER_LIMIT and REGISTRATION_REVOKED through a real
worker process, a real broker and a real store, in and out of order."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
from kafka_helpers import MakeSettings, read_all
from worker_helpers import (
    WorkerProcess,
    flagged_reasons,
    operator_signed,
    produce,
    register,
    wait_for,
)

from simguard.settings import Settings

OPERATOR = "52003"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def at(minutes: float) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def sim(seed: int) -> dict[str, str]:
    return {
        "operator": OPERATOR,
        "imsi": factories.imsi(OPERATOR, seed),
        "iccid": factories.iccid(seed),
        "msisdn": factories.msisdn(seed),
    }


def activation(seed: int, minutes: float = 0) -> dict[str, Any]:
    return factories.valid_activation(**sim(seed), activated_at=at(minutes))


def registration(
    seed: int,
    minutes: float = 0,
    holder: int = 1,
    status: str = "active",
    verification: str = "biometric",
) -> dict[str, Any]:
    return factories.valid_registration_wire(
        **sim(seed),
        registered_at=at(minutes),
        holder_ref=factories.holder_ref(holder),
        status=status,
        verification=verification,
    )


def observation(seed: int, minutes: float = 0) -> dict[str, Any]:
    return factories.valid_network_event(
        **{k: v for k, v in sim(seed).items() if k in {"operator", "imsi"}},
        observed_at=at(minutes),
    )


StartWorker = Callable[..., WorkerProcess]


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Settings:
    overrides: dict[str, Any] = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_database")
    base = make_settings(**overrides)
    rules = dataclasses.replace(base.rules, unregistered_grace_seconds=2)
    return base.replace(rules=rules)


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[StartWorker]:
    started: list[WorkerProcess] = []

    def start(settings: Settings, name: str = "w1", **env: str) -> WorkerProcess:
        worker = WorkerProcess(settings, name, tmp_path, extra_env=env).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop_quietly()


def test_activation_without_registration_is_flagged_unregistered_at_its_deadline(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_activations, [activation(1)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 1): {"UNREGISTERED"}}
    record = register(settings)[factories.imsi(OPERATOR, 1)]
    assert record["version"] == 1
    assert record["risk_score"] == 40
    assert record["rules_version"] == settings.rules.rules_version


def test_registration_arriving_before_the_deadline_prevents_the_flag(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_activations, [activation(1), activation(2)])
    produce(settings, settings.topic_registrations, [registration(1, minutes=5)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    # SIM 2 is the control: flagged at the same deadline; SIM 1 is not.
    assert flagged == {factories.imsi(OPERATOR, 2): {"UNREGISTERED"}}


def test_registration_before_the_activation_prevents_the_flag(
    settings: Settings, start_worker: StartWorker
) -> None:
    produce(settings, settings.topic_registrations, [registration(1, minutes=-60)])
    start_worker(settings)
    produce(settings, settings.topic_activations, [activation(1), activation(2)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 2): {"UNREGISTERED"}}


def test_late_verified_registration_clears_unregistered(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_activations, [activation(1)])
    assert wait_for(lambda: flagged_reasons(settings), timeout=60)
    produce(settings, settings.topic_registrations, [registration(1, minutes=30)])
    imsi = factories.imsi(OPERATOR, 1)
    cleared = wait_for(lambda: register(settings).get(imsi, {}).get("status") == "cleared")
    assert cleared
    record = register(settings)[imsi]
    assert record["version"] == 2
    assert record["reasons"] == []
    assert record["first_flagged_at"] is not None


def test_registration_without_verification_leaves_the_sim_unregistered(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_registrations, [registration(1, verification="none")])
    produce(settings, settings.topic_activations, [activation(1, minutes=1)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 1): {"UNREGISTERED"}}


def test_sixth_active_registration_of_a_holder_is_over_the_limit(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(
        settings,
        settings.topic_registrations,
        [registration(seed, minutes=seed, holder=7) for seed in range(1, 7)],
    )
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 6): {"IDENTITY_OVER_LIMIT"}}
    evidence = register(settings)[factories.imsi(OPERATOR, 6)]["reasons"][0]["evidence"]
    assert evidence["active_registrations"] == 6
    assert evidence["position"] == 6


def test_over_limit_goes_to_the_latest_sim_when_the_first_registration_arrives_last(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    later_five = [registration(seed, minutes=seed, holder=7) for seed in range(2, 7)]
    produce(settings, settings.topic_registrations, later_five)
    produce(settings, settings.topic_registrations, [registration(1, minutes=1, holder=7)])

    def settled() -> dict[str, set[str]]:
        reasons = flagged_reasons(settings)
        return reasons if factories.imsi(OPERATOR, 1) not in reasons and reasons else {}

    assert wait_for(settled, timeout=60) == {factories.imsi(OPERATOR, 6): {"IDENTITY_OVER_LIMIT"}}


def test_deregistering_one_of_the_first_five_clears_the_sixth(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(
        settings,
        settings.topic_registrations,
        [registration(seed, minutes=seed, holder=7) for seed in range(1, 7)],
    )
    assert wait_for(lambda: flagged_reasons(settings), timeout=60)
    produce(
        settings,
        settings.topic_registrations,
        [registration(2, minutes=100, holder=7, status="deregistered")],
    )
    imsi6 = factories.imsi(OPERATOR, 6)
    assert wait_for(lambda: register(settings).get(imsi6, {}).get("status") == "cleared")


def test_use_after_suspension_is_flagged_revoked(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_registrations, [registration(1, minutes=0)])
    produce(
        settings, settings.topic_registrations, [registration(1, minutes=60, status="suspended")]
    )
    produce(settings, settings.topic_network_events, [observation(1, minutes=90)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 1): {"REGISTRATION_REVOKED"}}


def test_use_arriving_before_the_revocation_event_is_flagged_the_same(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_registrations, [registration(1, minutes=0)])
    produce(settings, settings.topic_network_events, [observation(1, minutes=90)])
    produce(
        settings, settings.topic_registrations, [registration(1, minutes=60, status="suspended")]
    )
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 1): {"REGISTRATION_REVOKED"}}


def test_use_before_the_suspension_time_is_not_revoked(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_registrations, [registration(1, minutes=0)])
    produce(settings, settings.topic_network_events, [observation(1, minutes=30)])
    produce(
        settings, settings.topic_registrations, [registration(1, minutes=60, status="suspended")]
    )
    # SIM 2 is the control that proves the worker has processed this far.
    produce(settings, settings.topic_activations, [activation(2)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 2): {"UNREGISTERED"}}


def test_reinstated_registration_clears_revoked(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(settings, settings.topic_registrations, [registration(1, minutes=0)])
    produce(
        settings, settings.topic_registrations, [registration(1, minutes=60, status="suspended")]
    )
    produce(settings, settings.topic_network_events, [observation(1, minutes=90)])
    assert wait_for(lambda: flagged_reasons(settings), timeout=60)
    produce(settings, settings.topic_registrations, [registration(1, minutes=120)])
    imsi = factories.imsi(OPERATOR, 1)
    assert wait_for(lambda: register(settings).get(imsi, {}).get("status") == "cleared")


def test_resent_event_is_applied_once_and_conflicting_content_is_dead_lettered(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    first = activation(1)
    conflicting = dict(first, channel="kiosk")
    produce(settings, settings.topic_activations, [first, dict(first), conflicting])
    dead = wait_for(lambda: read_all(settings, settings.topic_dead_letter, timeout=1), timeout=60)
    assert [orjson.loads(r.value)["error"] for r in dead] == ["event_id_conflict"]
    assert wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert register(settings)[first["imsi"]]["version"] == 1
    assert len(read_all(settings, settings.topic_flagged)) == 1


def test_poison_messages_are_dead_lettered_with_their_key_and_processing_goes_on(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    from kafka_helpers import produce_raw

    produce_raw(settings, settings.topic_activations, "not-json-key", b"{oops")
    produce_raw(settings, settings.topic_activations, "bytes-key", b"\xff\xfe\x00")
    invalid = activation(1)
    invalid["iccid"] = "1234"
    produce(settings, settings.topic_activations, [invalid, activation(2)])
    dead = wait_for(
        lambda: read_all(settings, settings.topic_dead_letter, timeout=1, min_count=3), timeout=60
    )
    by_key = {r.key: orjson.loads(r.value) for r in dead}
    assert by_key["not-json-key"]["error"] == "unparseable"
    # Not JSON, so possibly anything: kept as its hash and length only.
    assert by_key["bytes-key"]["value_encoding"] == "withheld"
    assert by_key["bytes-key"]["value"].endswith(" bytes:3")
    assert by_key[invalid["imsi"]]["error"] == "invalid_event"
    assert by_key[invalid["imsi"]]["source_topic"] == settings.topic_activations
    assert wait_for(lambda: flagged_reasons(settings), timeout=60) == {
        factories.imsi(OPERATOR, 2): {"UNREGISTERED"}
    }


def test_sigterm_drains_and_exits_cleanly(settings: Settings, start_worker: StartWorker) -> None:
    worker = start_worker(settings)
    produce(settings, settings.topic_activations, [activation(1)])
    assert wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert worker.terminate(timeout=30) == 0


def test_a_record_with_a_forged_validation_signature_is_validated_in_full(
    settings: Settings, start_worker: StartWorker
) -> None:
    from kafka_helpers import produce_raw

    from schemas import attestation

    start_worker(settings)
    invalid = activation(1)
    invalid["iccid"] = "1234"
    produce_raw(
        settings,
        settings.topic_activations,
        invalid["imsi"],
        orjson.dumps(invalid),
        headers=[
            (attestation.HEADER, attestation.sign("not-the-secret", orjson.dumps(invalid))),
            *operator_signed(settings, invalid["imsi"].encode(), orjson.dumps(invalid)),
        ],
    )
    dead = wait_for(lambda: read_all(settings, settings.topic_dead_letter, timeout=1), timeout=60)
    assert [orjson.loads(r.value)["error"] for r in dead] == ["invalid_event"]


def foreign_registration(
    operator: str, seed: int, minutes: float, holder: int, status: str = "active"
) -> dict[str, Any]:
    return factories.valid_registration_wire(
        operator=operator,
        imsi=factories.imsi(operator, seed),
        iccid=factories.iccid(seed),
        msisdn=factories.msisdn(seed),
        registered_at=at(minutes),
        holder_ref=factories.holder_ref(holder),
        holder_nationality="MM",
        status=status,
        verification="in_person",
    )


def test_a_foreign_holders_fourth_sim_with_one_operator_is_over_its_cap_and_three_are_not(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    # Holder 8 first: three with AIS and two with DTAC, within every cap.
    within = [foreign_registration("52003", 80 + n, n, holder=8) for n in range(3)]
    within += [foreign_registration("52005", 85 + n, 3 + n, holder=8) for n in range(2)]
    over = [foreign_registration("52003", 90 + n, n, holder=9) for n in range(4)]
    produce(settings, settings.topic_registrations, [*within, *over])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi("52003", 93): {"IDENTITY_OVER_LIMIT"}}
    evidence = register(settings)[factories.imsi("52003", 93)]["reasons"][0]["evidence"]
    assert (evidence["scope"], evidence["operator"], evidence["limit"]) == ("operator", "52003", 3)


def test_deregistering_a_foreign_holders_first_sim_with_the_operator_clears_its_fourth(
    settings: Settings, start_worker: StartWorker
) -> None:
    start_worker(settings)
    produce(
        settings,
        settings.topic_registrations,
        [foreign_registration("52003", 90 + n, n, holder=9) for n in range(4)],
    )
    assert wait_for(lambda: flagged_reasons(settings), timeout=60)
    produce(
        settings,
        settings.topic_registrations,
        [foreign_registration("52003", 90, 10, holder=9, status="deregistered")],
    )
    cleared = wait_for(
        lambda: register(settings)[factories.imsi("52003", 93)]["status"] == "cleared", timeout=60
    )
    assert cleared
