"""HIGH_CALL_VOLUME and STATIC_HIGH_VOLUME through a real worker process, a
real broker and a real store: operators' daily usage reports."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
from kafka_helpers import read_all
from worker_helpers import WorkerProcess, flagged_reasons, produce, register, wait_for

from simguard.settings import Settings
from simguard.store import abnormal_usage, open_store

OPERATOR = "52003"


def day(days_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days_ago)).date().isoformat()


def report(seed: int, days_ago: int, calls: int, top_cell_share: float = 0.4) -> dict[str, Any]:
    return factories.valid_usage(
        operator=OPERATOR,
        imsi=factories.imsi(OPERATOR, seed),
        day=day(days_ago),
        outgoing_calls=calls,
        distinct_called_numbers=calls // 2,
        distinct_cells=1 if top_cell_share == 1 else 6,
        top_cell_share=top_cell_share,
    )


@pytest.fixture
def settings(settings_on_each_backend: Settings) -> Settings:
    return settings_on_each_backend


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    started = WorkerProcess(settings, "w1", tmp_path).start()
    yield started
    started.stop_quietly()


def test_101_calls_a_day_are_flagged_and_100_are_not(
    settings: Settings, worker: WorkerProcess
) -> None:
    # The one within the limit first: had it been over, it would be flagged first.
    produce(settings, settings.topic_usage, [report(2, 1, calls=100), report(1, 1, calls=101)])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 1): {"HIGH_CALL_VOLUME"}}
    evidence = register(settings)[factories.imsi(OPERATOR, 1)]["reasons"][0]["evidence"]
    assert evidence == {"days_over_limit": [day(1)], "max_outgoing_calls": 101, "limit": 100}


def test_three_static_days_are_flagged_and_two_are_not(
    settings: Settings, worker: WorkerProcess
) -> None:
    two = [report(4, days_ago, calls=60, top_cell_share=1) for days_ago in (2, 1)]
    three = [report(3, days_ago, calls=60, top_cell_share=1) for days_ago in (5, 1, 3)]
    produce(settings, settings.topic_usage, [*two, *three])
    flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
    assert flagged == {factories.imsi(OPERATOR, 3): {"STATIC_HIGH_VOLUME"}}


def test_a_second_report_of_a_day_is_a_duplicate_and_one_with_other_counters_is_dead_lettered(
    settings: Settings, worker: WorkerProcess
) -> None:
    first = report(5, 1, calls=140)
    again = {**first, "event_id": factories.valid_usage()["event_id"]}
    other = {
        **again,
        "event_id": factories.valid_usage()["event_id"],
        "outgoing_calls": 20,
        "distinct_called_numbers": 10,
    }
    produce(settings, settings.topic_usage, [first, again, other, dict(first)])
    dead = wait_for(lambda: read_all(settings, settings.topic_dead_letter, timeout=1), timeout=60)
    assert [orjson.loads(r.value)["error"] for r in dead] == ["usage_day_conflict"]
    assert wait_for(lambda: flagged_reasons(settings), timeout=60) == {
        first["imsi"]: {"HIGH_CALL_VOLUME"}
    }
    assert register(settings)[first["imsi"]]["version"] == 1


def test_only_abnormal_days_are_kept_for_the_weekly_report(
    settings: Settings, worker: WorkerProcess
) -> None:
    produce(
        settings,
        settings.topic_usage,
        [report(6, 1, calls=12), report(7, 1, calls=150), report(8, 1, calls=35, top_cell_share=1)],
    )
    wait_for(lambda: len(flagged_reasons(settings)) >= 1, timeout=60)
    store = open_store(settings.database_url)

    def rows() -> list[dict[str, Any]]:
        with store.reading() as tx:
            return abnormal_usage.between(tx, 0, 10**6)

    try:
        kept = wait_for(lambda: len(rows()) >= 2 and rows(), timeout=30)
    finally:
        store.close()
    assert {row["imsi"] for row in kept} == {factories.imsi(OPERATOR, s) for s in (7, 8)}
