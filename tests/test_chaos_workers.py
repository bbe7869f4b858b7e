"""Worker chaos: while events flow, workers are SIGKILLed at random moments
(at least 20 kills) and the group scales 1 -> 3 -> 1, on SQLite and on
PostgreSQL. Afterwards no event is lost or applied twice and no
(imsi, version) has two contents."""

from __future__ import annotations

import dataclasses
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from application_counter import count_applications
from kafka_helpers import MakeSettings
from test_worker_faults import assert_register_is_sound
from worker_helpers import WorkerProcess, flagged_reasons, produce, wait_for
from workloads import registration_workload

from simguard.settings import Settings

KILLS = 20
SIMS = 400


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def settings(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Settings:
    store: dict[str, str] = {}
    if request.param == "postgresql":
        store["database_url"] = request.getfixturevalue("postgres_database")
    base = make_settings(worker_max_batch_records=50, topic_partitions=6, **store)
    settings = base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=3))
    count_applications(settings)
    return settings


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[dict[str, WorkerProcess]]:
    workers: dict[str, WorkerProcess] = {}
    yield workers
    for worker in workers.values():
        worker.stop_quietly()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_repeated_kills_and_scaling_lose_nothing_and_apply_nothing_twice(
    settings: Settings, tmp_path: Path, pool: dict[str, WorkerProcess]
) -> None:
    workload = registration_workload(SIMS)
    chooser = random.Random(20261123)

    def start(name: str) -> None:
        pool[name] = WorkerProcess(settings, name, tmp_path).start()

    def feed() -> None:
        # Events keep arriving during the whole run, in small slices.
        step = 25
        for start_index in range(0, SIMS, step):
            produce(
                settings,
                settings.topic_activations,
                workload.activations[start_index : start_index + step],
            )
            produce(
                settings,
                settings.topic_registrations,
                workload.registrations[start_index : start_index + step],
            )
            time.sleep(0.5)

    feeder = threading.Thread(target=feed, daemon=True)
    start("w1")
    feeder.start()
    kills = 0
    scaled_up = scaled_down = False
    while kills < KILLS:
        time.sleep(chooser.uniform(0.3, 2.0))
        if kills == 5 and not scaled_up:
            start("w2")
            start("w3")
            scaled_up = True
        if kills == 15 and not scaled_down:
            pool.pop("w2").terminate()
            pool.pop("w3").terminate()
            scaled_down = True
        victim = chooser.choice(sorted(pool))
        pool[victim].kill()
        kills += 1
        start(victim)
    feeder.join(timeout=120)
    assert not feeder.is_alive()

    settled = wait_for(lambda: flagged_reasons(settings) == workload.expected, timeout=180)
    flagged = flagged_reasons(settings)
    print(
        f"\nchaos: {kills} SIGKILLs, scaled 1->3->1, {workload.size} events sent, "
        f"{len(workload.expected)} SIMs expected flagged, {len(flagged)} flagged"
    )
    missing = set(workload.expected) - set(flagged)
    extra = set(flagged) - set(workload.expected)
    assert settled, f"missing {missing}, extra {extra}"
    assert_register_is_sound(settings, workload.size)
