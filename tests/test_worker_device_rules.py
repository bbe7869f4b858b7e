"""SIM_DEVICE_CYCLING through a real worker process, a real broker and a real
store: network observations carrying the handset's IMEI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import pytest
from kafka_helpers import MakeSettings
from worker_helpers import WorkerProcess, flagged_reasons, produce, register, wait_for

from simguard.settings import Settings

OPERATOR = "52003"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)


def observation(seed: int, hours: float, handset: int) -> dict[str, Any]:
    return factories.valid_network_event(
        operator=OPERATOR,
        imsi=factories.imsi(OPERATOR, seed),
        observed_at=(START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        imei=factories.imei(1000 * seed + handset),
    )


@pytest.fixture
def settings(settings_on_each_backend: Settings) -> Settings:
    return settings_on_each_backend


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    started = WorkerProcess(settings, "w1", tmp_path).start()
    yield started
    started.stop_quietly()


def test_a_sim_in_five_handsets_within_a_day_is_flagged_and_one_in_four_is_not(
    settings: Settings, worker: WorkerProcess
) -> None:
    # SIM 2 first: had its four handsets been five, it would be flagged first.
    four = [observation(2, hours=index, handset=index) for index in range(4)]
    five = [observation(1, hours=4 * index, handset=index) for index in range(5)]
    produce(settings, settings.topic_network_events, [*four, *reversed(five)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 1): {"SIM_DEVICE_CYCLING"}}
    reason = register(settings)[factories.imsi(OPERATOR, 1)]["reasons"][0]
    assert reason["evidence"]["devices"] == 5
    assert reason["since"].startswith((START + timedelta(hours=16)).strftime("%Y-%m-%dT%H:%M:%S"))


def in_handset(seed: int, hours: float, imei: str) -> dict[str, Any]:
    return {**observation(seed, hours, handset=0), "imei": imei}


def test_eight_sims_in_one_handset_are_all_flagged_and_seven_in_another_are_not(
    settings: Settings, worker: WorkerProcess
) -> None:
    sim_box, control = factories.imei(900_001), factories.imei(900_002)
    # The control handset first: had its seven SIMs been eight, they would be flagged first.
    sevens = [in_handset(100 + seed, hours=seed, imei=control) for seed in range(7)]
    eights = [in_handset(200 + seed, hours=4 * seed, imei=sim_box) for seed in range(8)]
    produce(settings, settings.topic_network_events, [*sevens, *eights])
    box_sims = {factories.imsi(OPERATOR, 200 + seed) for seed in range(8)}
    flagged = wait_for(lambda: len(flagged_reasons(settings)) >= 8 and flagged_reasons(settings))
    assert flagged == {imsi: {"DEVICE_MANY_SIMS"} for imsi in box_sims}
    evidence = register(settings)[min(box_sims)]["reasons"][0]["evidence"]
    assert evidence["sims"] == 8


@pytest.mark.postgres
def test_two_workers_on_postgresql_flag_every_sim_of_a_handset_shared_across_their_partitions(
    make_settings: MakeSettings, postgres_database: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url=postgres_database)
    workers = [WorkerProcess(settings, name, tmp_path).start() for name in ("w1", "w2")]
    try:
        for worker in workers:
            worker.wait_ready()
        sim_box = factories.imei(900_003)
        # Nine SIMs, sent one at a time so that both workers meet the handset often.
        seeds = range(300, 309)
        for seed in seeds:
            produce(
                settings,
                settings.topic_network_events,
                [in_handset(seed, hours=seed - 300, imei=sim_box)],
            )
        expected = {factories.imsi(OPERATOR, seed): {"DEVICE_MANY_SIMS"} for seed in seeds}
        flagged = wait_for(lambda: flagged_reasons(settings) == expected and expected, timeout=90)
        assert flagged == expected
    finally:
        for worker in workers:
            worker.stop_quietly()


def in_person_registration(seed: int, hours: float, verification: str) -> dict[str, Any]:
    return factories.valid_registration_wire(
        operator=OPERATOR,
        imsi=factories.imsi(OPERATOR, seed),
        iccid=factories.iccid(seed),
        msisdn=factories.msisdn(seed),
        registered_at=(START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        holder_ref=factories.holder_ref(seed),
        verification=verification,
    )


def test_a_sim_verified_in_person_changes_handsets_unflagged_and_re_verification_clears_one(
    settings: Settings, worker: WorkerProcess
) -> None:
    produce(
        settings,
        settings.topic_registrations,
        [
            in_person_registration(401, hours=-1, verification="in_person"),
            in_person_registration(402, hours=-1, verification="ekyc"),
        ],
    )
    handsets = [
        observation(seed, hours=index, handset=index) for seed in (401, 402) for index in range(5)
    ]
    produce(settings, settings.topic_network_events, handsets)
    remote = factories.imsi(OPERATOR, 402)
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {remote: {"SIM_DEVICE_CYCLING"}}
    # The subscriber re-verifies at a shop, as Vietnam asks after a device change.
    produce(
        settings,
        settings.topic_registrations,
        [in_person_registration(402, hours=6, verification="biometric")],
    )
    assert wait_for(lambda: register(settings)[remote]["status"] == "cleared", timeout=60)
    assert factories.imsi(OPERATOR, 401) not in register(settings)
