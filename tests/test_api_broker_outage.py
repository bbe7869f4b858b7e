"""With the broker down the API answers 503 + Retry-After within its ack
timeout, never 202; once the broker is back the operator's resend is accepted
and the events are on the topic.

The broker here is this test's own (it is stopped), never the session's.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from factories import imsi, valid_activation, valid_network_event
from kafka_helpers import read_all

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key
from simguard.broker import KafkaNode, free_port, start_single_node
from simguard.store import open_store

ACK_TIMEOUT_SECONDS = 2.0


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[KafkaNode]:
    node = start_single_node(tmp_path / "kafka", port=free_port(), timeout=90)
    yield node
    node.stop()


@pytest.mark.timeout(240)
def test_a_stopped_broker_gives_503_and_the_resend_is_accepted_after_restart(
    own_broker: KafkaNode, make_settings: Any
) -> None:
    settings = make_settings(
        kafka_bootstrap_servers=own_broker.bootstrap,
        api_kafka_ack_timeout_seconds=ACK_TIMEOUT_SECONDS,
        api_retry_after_seconds=3,
    )
    app = create_app(settings)
    _, key = issue_key(open_store(settings.database_url), "52003")
    client = app.test_client()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(events: list[dict[str, Any]]) -> Any:
        return client.post(
            "/v1/activations", data=orjson.dumps({"events": events}), headers=headers
        )

    try:
        assert post([valid_activation()]).status_code == 202

        own_broker.stop()
        batch = [valid_activation(imsi=imsi("52003", seed)) for seed in range(1, 11)]
        started = time.monotonic()
        refused = post(batch)
        waited = time.monotonic() - started

        assert refused.status_code == 503
        assert refused.mimetype == "application/problem+json"
        assert refused.headers["Retry-After"] == "3"
        assert refused.get_json()["code"] == "UNAVAILABLE"
        assert waited < ACK_TIMEOUT_SECONDS + 1.5
        assert client.get("/readyz").status_code == 503

        own_broker.start(timeout=90)
        # An operator resends after Retry-After until it is accepted; the
        # producer needs a moment to find the restarted broker again.
        deadline = time.monotonic() + 60
        while (resent := post(batch)).status_code == 503 and time.monotonic() < deadline:
            time.sleep(1)
        assert resent.status_code == 202
        assert resent.get_json()["accepted"] == 10
        assert client.get("/readyz").status_code == 200
    finally:
        app.extensions[EXTENSION_KEY].close(timeout_seconds=1)

    records = read_all(settings, settings.topic_activations, timeout=20)
    on_topic = {record.json()["event_id"] for record in records}
    assert {event["event_id"] for event in batch} <= on_topic


def test_without_any_broker_concurrent_requests_are_refused_within_the_ack_timeout(
    make_settings: Any,
) -> None:
    settings = make_settings().replace(
        kafka_bootstrap_servers=f"127.0.0.1:{free_port()}", api_kafka_ack_timeout_seconds=1.0
    )
    app = create_app(settings)
    _, key = issue_key(open_store(settings.database_url), "52003")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    def post(_: int) -> tuple[int, float]:
        started = time.monotonic()
        response = app.test_client().post(
            "/v1/network-events", data=orjson.dumps(valid_network_event()), headers=headers
        )
        return response.status_code, time.monotonic() - started

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(post, range(8)))

    assert {status for status, _ in answers} == {503}
    # Not one ack timeout per queued request: they share the failed attempt.
    assert max(seconds for _, seconds in answers) < 2 * 1.0 + 1.0
