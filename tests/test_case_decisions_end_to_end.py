"""A regulator's dismissal from the API to the register, the audit and the
operator's notice topic, through a real worker SIGKILLed between its store
commit and its Kafka commit: the decision is applied once, and its case
record, audit record and withdrawn notice are each published once, on the
session broker and a real SQLite store."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
import orjson
import pytest
from kafka_helpers import MakeSettings, read_all
from worker_helpers import WorkerProcess, produce, register, wait_for

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_regulator_key
from simguard.settings import Settings
from simguard.store import open_store

OPERATOR = "52003"
SIM = factories.imsi(OPERATOR, 4545)


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    base = make_settings()
    return base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=2))


@pytest.fixture
def workers() -> Iterator[list[WorkerProcess]]:
    started: list[WorkerProcess] = []
    yield started
    for worker in started:
        worker.stop_quietly()


def _start(
    settings: Settings, tmp_path: Path, started: list[WorkerProcess], **env: str
) -> WorkerProcess:
    worker = WorkerProcess(settings, "w1", tmp_path, extra_env=env).start()
    started.append(worker)
    return worker


@pytest.mark.slow
def test_a_dismissal_is_applied_audited_and_noticed_once_though_its_worker_dies_between_commits(
    settings: Settings, tmp_path: Path, workers: list[WorkerProcess]
) -> None:
    activated_at = (datetime.now(UTC) - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    produce(
        settings,
        settings.topic_activations,
        [factories.valid_activation(operator=OPERATOR, imsi=SIM, activated_at=activated_at)],
    )
    first = _start(settings, tmp_path, workers)
    assert wait_for(lambda: SIM in register(settings), timeout=60), first.log_text()[-2000:]
    assert first.terminate() == 0
    store = open_store(settings.database_url)
    _, regulator_key = issue_regulator_key(store, "nbtc")
    store.close()
    app = create_app(settings)
    answer = app.test_client().post(
        f"/v1/cases/{SIM}/decisions",
        json={
            "action": "dismiss",
            "case_version": 1,
            "reason": "Verified in person: a border trader.",
            "expires_at": (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        headers={"Authorization": f"Bearer {regulator_key}"},
    )
    assert answer.status_code == 202, answer.get_json()

    doomed = _start(settings, tmp_path, workers, SIMGUARD_FAULT_KILL_AT="after_store_commit")
    assert doomed.wait(timeout=60) == -9, doomed.log_text()[-2000:]
    _start(settings, tmp_path, workers)

    assert wait_for(lambda: register(settings)[SIM]["status"] == "cleared", timeout=60)
    versions = Counter(
        orjson.loads(r.value)["version"] for r in read_all(settings, settings.topic_flagged)
    )
    assert versions == {1: 1, 2: 1}
    audit = [orjson.loads(r.value) for r in read_all(settings, settings.topic_decisions_audit)]
    assert [(a["decision_id"], a["outcome"], a["resulting_version"]) for a in audit] == [
        (answer.get_json()["decision_id"], "applied", 2)
    ]
    notices = [orjson.loads(r.value) for r in read_all(settings, settings.notice_topic(OPERATOR))]
    assert [(n["notice_version"], n["status"]) for n in notices] == [(1, "open"), (2, "withdrawn")]
    listed = app.test_client().get(
        f"/v1/cases/{SIM}/decisions", headers={"Authorization": f"Bearer {regulator_key}"}
    )
    assert [d["outcome"] for d in listed.get_json()["decisions"]] == ["applied"]
    app.extensions[EXTENSION_KEY].close()
