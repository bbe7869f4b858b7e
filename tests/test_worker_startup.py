"""A worker that starts before its input topics exist waits for them, then works."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import factories
from kafka_helpers import MakeSettings
from worker_helpers import WorkerProcess, flagged_reasons, produce, wait_for

from simguard.kafka_clients import ensure_topics

OPERATOR = "52003"


def test_worker_started_before_its_topics_exist_processes_events_once_they_are_created(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    base = make_settings()
    later = uuid.uuid4().hex[:8]
    settings = base.replace(
        **{
            name: f"{getattr(base, name)}.{later}"
            for name in (
                "topic_activations",
                "topic_registrations",
                "topic_network_events",
                "topic_rechecks",
            )
        },
        rules=dataclasses.replace(base.rules, unregistered_grace_seconds=1),
    )
    worker = WorkerProcess(settings, "w1", tmp_path).start()
    try:
        assert wait_for(lambda: "waiting for input topics" in worker.log_text(), timeout=30), (
            worker.log_text()
        )
        ensure_topics(settings)
        imsi = factories.imsi(OPERATOR, 1)
        produce(
            settings,
            settings.topic_activations,
            [
                factories.valid_activation(
                    operator=OPERATOR,
                    imsi=imsi,
                    iccid=factories.iccid(1),
                    msisdn=factories.msisdn(1),
                )
            ],
        )
        flagged = wait_for(lambda: flagged_reasons(settings), timeout=60)
        assert flagged == {imsi: {"UNREGISTERED"}}
    finally:
        worker.stop_quietly()
