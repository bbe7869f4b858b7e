"""A real worker process whose shards another owner took in the store (as a
successor does when the group has moved on without it) is fenced: it does not
crash, rejoins the group, takes its shards again and applies what comes next."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import factories
import pytest
from kafka_helpers import MakeSettings
from worker_helpers import WorkerProcess, flagged_reasons, produce, wait_for

from simguard.settings import Settings
from simguard.store import open_store
from workers.shard_fence import ShardFence

OPERATOR = "52003"


def activation(seed: int) -> dict[str, object]:
    return factories.valid_activation(
        operator=OPERATOR,
        imsi=factories.imsi(OPERATOR, seed),
        iccid=factories.iccid(seed),
        msisdn=factories.msisdn(seed),
    )


@pytest.fixture(params=["sqlite", "postgresql"])
def settings(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Settings:
    overrides = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_database")
    base = make_settings(**overrides)
    return base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=1))


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, "w1", tmp_path).start()
    process.wait_ready()
    yield process
    process.stop_quietly()


def test_a_worker_fenced_in_the_store_rejoins_and_keeps_applying(
    settings: Settings, worker: WorkerProcess
) -> None:
    produce(settings, settings.topic_activations, [activation(1)])
    assert wait_for(lambda: len(flagged_reasons(settings)) == 1, timeout=60)

    store = open_store(settings.database_url)
    try:
        with store.transaction() as tx:
            ShardFence("intruder").take(tx, range(settings.topic_partitions))
    finally:
        store.close()
    produce(settings, settings.topic_activations, [activation(2)])

    assert wait_for(lambda: "store transaction fenced" in worker.log_text(), timeout=30), (
        worker.post_mortem()
    )
    assert wait_for(lambda: len(flagged_reasons(settings)) == 2, timeout=60), worker.post_mortem()
    assert worker.running()
