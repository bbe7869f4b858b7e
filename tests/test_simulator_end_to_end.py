"""A simulated population of 2,000 SIMs through the real system: `simguard api`
under gunicorn, the session's Kafka broker, and a `simguard worker` process.
The regulator's register must then hold exactly the simulator's truth: every
reason with precision and recall 1.0."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from api_process import ApiProcess
from kafka_helpers import MakeSettings
from worker_helpers import WorkerProcess, register

from simguard.api_keys import issue_key
from simguard.settings import Settings
from simguard.store import open_store
from tooling.simulator.check import check
from tooling.simulator.files import write_border_cells
from tooling.simulator.population import Scenario, generate
from tooling.simulator.post import post

SIMS = 2000
SEED = 7
# Short, so that the unregistered SIMs are judged within the test; long enough
# for a running worker to apply registrations posted before their activations.
GRACE_SECONDS = 5


@pytest.fixture
def system(make_settings: MakeSettings, tmp_path: Path) -> Iterator[tuple[Settings, Scenario, str]]:
    """Settings whose rules load the simulated border cells, the scenario,
    and a running API (its URL) and worker on those settings."""
    base = make_settings()
    rules = dataclasses.replace(base.rules, unregistered_grace_seconds=GRACE_SECONDS)
    scenario = generate(SIMS, SEED, datetime.now(UTC), rules)
    border_csv = write_border_cells(scenario.border_cells, tmp_path / "border_cells.csv")
    rules = dataclasses.replace(
        rules, border_cells_csv=str(border_csv), border_cells=frozenset(scenario.border_cells)
    )
    settings = make_settings(rules=rules)
    api = ApiProcess(settings, tmp_path)
    worker = WorkerProcess(settings, "simulated", tmp_path)
    try:
        worker.start()
        api.wait_ready()
        worker.wait_ready()
        yield settings, scenario, api.url
    finally:
        api.stop()
        worker.stop_quietly()


def _explain(settings: Settings, scenario: Scenario, imsis: set[str], path: Path) -> str:
    """Each mismatching SIM's actor, expected codes, latest case and events,
    written to `path`; the first few also go into the assertion message."""
    actor_of = {imsi: kind for kind, members in scenario.actors.items() for imsi in members}
    cases = register(settings, timeout=10)
    lines = []
    for imsi in sorted(imsis):
        events = {
            kind: [event for event in events if event["imsi"] == imsi]
            for kind, events in scenario.events.items()
        }
        lines.append(
            orjson.dumps(
                {
                    "imsi": imsi,
                    "actor": actor_of.get(imsi),
                    "expected": sorted(scenario.truth.get(imsi, ())),
                    "case": cases.get(imsi),
                    "events": events,
                }
            ).decode()
        )
    path.write_text("\n".join(lines) + "\n")
    return "\n".join(line[:1500] for line in lines[:5])


@pytest.mark.timeout(240)
def test_a_simulated_population_ends_with_exactly_the_true_flags(
    system: tuple[Settings, Scenario, str], tmp_path: Path
) -> None:
    settings, scenario, api_url = system
    store = open_store(settings.database_url)
    keys = {operator: issue_key(store, operator)[1] for operator in scenario.operators}
    store.close()

    started = time.monotonic()
    report = post(scenario, api_url, keys, batch_size=500, concurrency=4)
    posted_seconds = time.monotonic() - started
    assert report.accepted == report.sent == sum(scenario.counts().values())

    result = check(
        settings, scenario.truth, timeout=120, population=scenario.imsis, settle_seconds=3
    )
    print(report.summary(), f"posted in {posted_seconds:.1f} s", result.table(), sep="\n")
    wrong = {
        imsi
        for sample in (result.score.false_positive_sample, result.score.false_negative_sample)
        for imsis in sample.values()
        for imsi in imsis
    }
    details = _explain(settings, scenario, wrong, tmp_path / "mismatches.jsonl") if wrong else ""
    assert result.perfect, f"{result.table()}\n{details}"
    for reason in result.score.reasons:
        assert (reason.precision, reason.recall) == (1.0, 1.0), reason
