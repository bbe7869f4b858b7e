"""The worker's guarantees under real faults: SIGKILL at each step of the commit
protocol, a broker restarted underneath it, and a rebalance between two workers.
Afterwards no flag is missing, no event was applied twice, and no
(imsi, version) was published with two different contents. The tests whose
outcome depends on the store's transactions run on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
from application_counter import applications, count_applications
from kafka_helpers import MakeSettings, read_all
from worker_helpers import WorkerProcess, flagged_reasons, produce, wait_for
from workloads import registration_workload

from simguard.broker import KafkaNode, free_port, start_single_node
from simguard.settings import Settings

OPERATOR = "52003"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
UNREGISTERED_SEEDS = range(41, 51)
SHARED_HOLDER_SEEDS = range(51, 58)


def _at(minutes: int) -> str:
    return (START + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sim(seed: int) -> dict[str, str]:
    return {
        "operator": OPERATOR,
        "imsi": factories.imsi(OPERATOR, seed),
        "iccid": factories.iccid(seed),
        "msisdn": factories.msisdn(seed),
    }


def workload() -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, set[str]]]:
    """Activations, registrations, and the register they must produce."""
    generated = registration_workload(60)
    return generated.activations, generated.registrations, generated.expected


def assert_register_is_sound(settings: Settings, events_sent: int) -> None:
    records = [orjson.loads(r.value) for r in read_all(settings, settings.topic_flagged)]
    contents: dict[tuple[str, int], set[bytes]] = {}
    for record in records:
        contents.setdefault((record["imsi"], record["version"]), set()).add(
            orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
        )
    assert all(len(c) == 1 for c in contents.values()), "an (imsi, version) with two contents"
    seen = Counter((r["imsi"], r["version"]) for r in records)
    assert max(seen.values()) == 1, "a case record seen twice by a read_committed reader"
    for imsi in {r["imsi"] for r in records}:
        versions = sorted(v for (i, v) in seen if i == imsi)
        assert versions == list(range(1, len(versions) + 1)), f"missing versions for {imsi}"
    counted, distinct = applications(settings)
    assert counted == distinct, f"{counted - distinct} applications of events already applied"
    assert counted == events_sent, f"{events_sent - counted} events never applied"


STORES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture
def settings(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Settings:
    """SQLite unless a test names its stores with `parametrize("settings", ..., indirect=True)`."""
    store: dict[str, str] = {}
    if getattr(request, "param", "sqlite") == "postgresql":
        store["database_url"] = request.getfixturevalue("postgres_database")
    base = make_settings(worker_max_batch_records=15, **store)
    settings = base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=3))
    count_applications(settings)
    return settings


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop_quietly()


def _start(
    settings: Settings, name: str, tmp_path: Path, started: list[WorkerProcess], **env: str
) -> WorkerProcess:
    worker = WorkerProcess(settings, name, tmp_path, extra_env=env).start()
    started.append(worker)
    return worker


@pytest.mark.slow
@pytest.mark.parametrize(
    "point", ["after_store_commit", "before_kafka_commit", "after_kafka_commit"]
)
@pytest.mark.parametrize(
    ("settings", "batch"),
    [("sqlite", 1), ("sqlite", 3), pytest.param("postgresql", 3, marks=pytest.mark.postgres)],
    indirect=["settings"],
)
def test_worker_killed_at_a_point_of_a_batch_recovers_without_loss_or_duplicates(
    settings: Settings, tmp_path: Path, workers: list[WorkerProcess], point: str, batch: int
) -> None:
    activations, registrations, expected = workload()
    sent = produce(settings, settings.topic_activations, activations)
    sent += produce(settings, settings.topic_registrations, registrations)
    doomed = _start(
        settings,
        "w1",
        tmp_path,
        workers,
        SIMGUARD_FAULT_KILL_AT=point,
        SIMGUARD_FAULT_KILL_AFTER_BATCHES=str(batch),
    )
    assert doomed.wait(timeout=60) == -9, doomed.log_text()[-2000:]
    _start(settings, "w1", tmp_path, workers)
    assert wait_for(lambda: flagged_reasons(settings) == expected, timeout=90), flagged_reasons(
        settings
    )
    assert_register_is_sound(settings, sent)


@pytest.mark.slow
def test_worker_whose_consumer_stops_fetching_replaces_it_and_finishes_the_work(
    settings: Settings, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    activations, registrations, expected = workload()
    sent = produce(settings, settings.topic_activations, activations)
    sent += produce(settings, settings.topic_registrations, registrations)
    worker = _start(settings, "w1", tmp_path, workers, SIMGUARD_FAULT_STALL_AFTER_BATCHES="1")
    assert wait_for(lambda: flagged_reasons(settings) == expected, timeout=120), (
        worker.post_mortem()
    )
    assert "consumer stalled" in worker.log_text()
    assert_register_is_sound(settings, sent)


@pytest.mark.slow
def test_worker_survives_the_broker_crashing_and_restarting_underneath_it(
    make_settings: MakeSettings, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    node: KafkaNode = start_single_node(tmp_path / "kafka", port=free_port())
    try:
        base = make_settings(kafka_bootstrap_servers=node.bootstrap, worker_max_batch_records=15)
        settings = base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=3))
        count_applications(settings)
        activations, registrations, expected = workload()
        sent = produce(settings, settings.topic_activations, activations[:30])
        sent += produce(settings, settings.topic_registrations, registrations[:25])
        worker = _start(settings, "w1", tmp_path, workers)
        assert wait_for(lambda: flagged_reasons(settings), timeout=60), worker.post_mortem()
        # A crash, not a controlled shutdown: the broker gets no chance to
        # hand over leadership or flush its logs.
        node.kill()
        assert not node.is_running()
        node.start()
        sent += produce(settings, settings.topic_activations, activations[30:])
        sent += produce(settings, settings.topic_registrations, registrations[25:])
        assert wait_for(lambda: flagged_reasons(settings) == expected, timeout=120), (
            worker.log_text()[-3000:]
        )
        assert worker.running()
        assert_register_is_sound(settings, sent)
    finally:
        for worker in workers:
            worker.stop_quietly()
        node.stop()


@pytest.mark.slow
@pytest.mark.parametrize("settings", STORES, indirect=True)
def test_two_workers_with_a_rebalance_in_the_middle_give_the_same_register(
    settings: Settings, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    activations, registrations, expected = workload()
    first = _start(settings, "w1", tmp_path, workers)
    first.wait_ready()
    sent = produce(settings, settings.topic_activations, activations[:30])
    sent += produce(settings, settings.topic_registrations, registrations[:20])
    _start(settings, "w2", tmp_path, workers).wait_ready()
    sent += produce(settings, settings.topic_activations, activations[30:])
    sent += produce(settings, settings.topic_registrations, registrations[20:35])
    assert first.terminate(timeout=30) == 0
    sent += produce(settings, settings.topic_registrations, registrations[35:])
    assert wait_for(lambda: flagged_reasons(settings) == expected, timeout=120), flagged_reasons(
        settings
    )
    assert_register_is_sound(settings, sent)
