"""Property-based: requests generated from /openapi.json never make the API
fail (no 5xx), and every answer matches the schema documented for it.

The document is read from an app built at import (it connects to nothing);
the requests go to an app on the real broker and store, with a valid API key,
so generated events that happen to be valid are really published: a 202
adds exactly its events to the input topics, any other answer adds none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from test_api_ingest import EndOffsets, module_settings

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key
from simguard.broker import KafkaNode
from simguard.settings import Settings
from simguard.store import open_store

DOCUMENT_APP = create_app(
    Settings(
        hmac_secret="document-only",
        attestation_secret="document-attestation",
        database_url="sqlite:///:memory:",
    )
)
schema = schemathesis.openapi.from_wsgi("/openapi.json", DOCUMENT_APP)


@dataclass
class LiveApi:
    app: Flask
    key: str
    settings: Settings
    offsets: EndOffsets

    def input_records(self) -> int:
        return sum(self.offsets.total(topic) for topic in INPUT_TOPICS(self.settings))


def INPUT_TOPICS(settings: Settings) -> tuple[str, ...]:
    return (settings.topic_activations, settings.topic_registrations, settings.topic_network_events)


@pytest.fixture(scope="module")
def live_api(
    kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    api_settings = module_settings(kafka_broker, tmp_path_factory.mktemp("schemathesis"))
    app = create_app(api_settings)
    _, key = issue_key(open_store(api_settings.database_url), "52003")
    offsets = EndOffsets(api_settings)
    yield LiveApi(app, key, api_settings, offsets)
    offsets.close()
    app.extensions[EXTENSION_KEY].close()


@schema.parametrize()  # type: ignore[untyped-decorator]
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    # The module-scoped app is shared on purpose: one broker connection for all examples.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_generated_requests_get_documented_answers_and_no_server_error(
    case: Any, live_api: LiveApi
) -> None:
    before = live_api.input_records()
    response = case.call_and_validate(
        app=live_api.app,
        headers={"Authorization": f"Bearer {live_api.key}"},
        checks=[not_a_server_error, response_schema_conformance],
    )
    published = live_api.input_records() - before
    if response.status_code == 202:
        assert published == len(response.json()["event_ids"])
    else:
        assert published == 0, f"a {response.status_code} answer published {published} records"
