"""Worker chaos: while events flow, workers are SIGKILLed at random moments
(at least 20 kills) and the group scales 1 -> 3 -> 1, on SQLite and on
PostgreSQL. Afterwards no event is lost or applied twice and no
(imsi, version) has two contents."""

from __future__ import annotations

import dataclasses
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from application_counter import count_applications
from kafka_helpers import MakeSettings
from test_worker_faults import assert_register_is_sound
from worker_helpers import WorkerProcess, flagged_reasons, produce, wait_for
from workloads import registration_workload

from simguard.settings import Settings
from workers.faults import read_phase

KILLS = 20
AIMS = ("", "in_store_transaction", "between_commits")
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

    def phase_file(name: str) -> Path:
        return tmp_path / f"worker-{name}.phase"

    def start(name: str) -> None:
        # A stale step left by the killed process must not pass for the new one's.
        phase_file(name).unlink(missing_ok=True)
        env = {"SIMGUARD_FAULT_PHASE_FILE": str(phase_file(name))}
        pool[name] = WorkerProcess(settings, name, tmp_path, extra_env=env).start()

    def feed(index: int) -> None:
        # One slice of events per kill, so that every aimed kill finds
        # batches to land in.
        step = SIMS // KILLS
        sims = slice(index * step, (index + 1) * step)
        produce(settings, settings.topic_activations, workload.activations[sims])
        produce(settings, settings.topic_registrations, workload.registrations[sims])

    start("w1")
    kills = 0
    landings: Counter[str] = Counter()
    aiming = 0.0
    scaled_up = scaled_down = False
    while kills < KILLS:
        if kills == 5 and not scaled_up:
            start("w2")
            start("w3")
            scaled_up = True
        if kills == 15 and not scaled_down:
            pool.pop("w2").terminate()
            pool.pop("w3").terminate()
            scaled_down = True
        victim = chooser.choice(sorted(pool))
        feed(kills)
        # Two kills in three wait for a step of the commit protocol, which a
        # kill at a random moment rarely meets; the third lands where it falls.
        aim = AIMS[kills % len(AIMS)]
        if not aim:
            time.sleep(chooser.uniform(0.3, 2.0))
        else:
            trail, wanted = str(phase_file(victim)), aim
            waited = time.monotonic()
            wait_for(lambda: read_phase(trail) == wanted, timeout=15, interval=0.001)  # noqa: B023
            aiming += time.monotonic() - waited
        pool[victim].kill()
        landings[read_phase(str(phase_file(victim))) or "starting"] += 1
        kills += 1
        start(victim)
    settled = wait_for(lambda: flagged_reasons(settings) == workload.expected, timeout=180)
    flagged = flagged_reasons(settings)
    print(
        f"\nchaos: {kills} SIGKILLs, scaled 1->3->1, {workload.size} events sent, "
        f"{len(workload.expected)} SIMs expected flagged, {len(flagged)} flagged; "
        f"kills landed: {dict(landings)}, {aiming:.0f} s spent aiming"
    )
    assert sum(landings.values()) == kills
    assert landings["in_store_transaction"] > 0, landings
    assert landings["between_commits"] > 0, landings
    missing = set(workload.expected) - set(flagged)
    extra = set(flagged) - set(workload.expected)
    assert settled, f"missing {missing}, extra {extra}"
    assert_register_is_sound(settings, workload.size)
