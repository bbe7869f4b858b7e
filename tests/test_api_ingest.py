"""POST /v1/{activations,registrations,network-events,usage}: what is accepted reaches
Kafka keyed by IMSI; what is refused names each bad field and publishes nothing.

The app runs in-process against the session's real broker and a real SQLite
store; the topics are read back the way any consumer would read them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from factories import (
    OMIT,
    iccid,
    imei,
    imsi,
    thai_national_id,
    valid_activation,
    valid_holder,
    valid_network_event,
    valid_registration_request,
    valid_usage,
)
from flask import Flask
from flask.testing import FlaskClient
from kafka import KafkaConsumer, TopicPartition
from kafka.partitioner.default import murmur2 as kafka_python_murmur2
from kafka_helpers import Record, read_all
from prometheus_client import REGISTRY
from werkzeug.test import TestResponse

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import issue_key, revoke
from simguard.broker import KafkaNode
from simguard.kafka_clients import bootstrap, ensure_topics
from simguard.settings import Settings, load_settings
from simguard.store import open_store

PATHS = {
    "activations": "/v1/activations",
    "registrations": "/v1/registrations",
    "network_events": "/v1/network-events",
    "usage": "/v1/usage",
}
FACTORIES = {
    "activations": valid_activation,
    "registrations": valid_registration_request,
    "network_events": valid_network_event,
    "usage": valid_usage,
}
PROBLEM = "application/problem+json"


@dataclass
class Api:
    settings: Settings
    client: FlaskClient
    key: str

    def post(
        self,
        kind: str,
        body: Any,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> TestResponse:
        sent = {"Authorization": f"Bearer {self.key}", "Content-Type": content_type}
        sent |= headers or {}
        data = raw if raw is not None else orjson.dumps(body)
        return self.client.post(PATHS[kind], data=data, headers=sent)

    def topic(self, kind: str) -> str:
        return str(self.settings.topics()[kind])

    def published(self, kind: str, event_ids: list[str]) -> list[Record]:
        """The records of these events, as a consumer reads them."""
        wanted = set(event_ids)
        records = read_all(self.settings, self.topic(kind), timeout=10.0)
        return [r for r in records if r.json().get("event_id") in wanted]


class EndOffsets:
    """Records ever written to a topic (the sum of its partitions' end
    offsets), from one long-lived consumer so that a check costs milliseconds."""

    def __init__(self, settings: Settings) -> None:
        self._consumer = KafkaConsumer(
            bootstrap_servers=bootstrap(settings), group_id=None, enable_auto_commit=False
        )

    def total(self, topic: str) -> int:
        deadline = time.monotonic() + 10
        while not (partitions := self._consumer.partitions_for_topic(topic)):
            assert time.monotonic() < deadline, f"topic {topic} not found"
            time.sleep(0.1)
        offsets = self._consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
        return int(sum(offsets.values()))

    def close(self) -> None:
        self._consumer.close()


def module_settings(broker: KafkaNode, directory: Path, **overrides: Any) -> Settings:
    """Like conftest's make_settings, but for a whole module: the tests here
    share one set of topics and check only their own events or offsets."""
    (directory / "empty.toml").write_text("")
    defaults = load_settings(environ={"SIMGUARD_CONFIG": str(directory / "empty.toml")})
    suffix = uuid.uuid4().hex[:8]
    topics = defaults.topics_suffixed(suffix)
    settings = defaults.replace(
        **topics,
        kafka_bootstrap_servers=broker.bootstrap,
        database_url=f"sqlite:///{directory}/simguard.db",
        hmac_secret=f"test-secret-{suffix}".ljust(32, "0"),
        attestation_secret=f"test-attestation-secret-{suffix}".ljust(32, "0"),
        operator_signing_secret=f"test-operator-signing-secret-{suffix}".ljust(32, "0"),
        topic_partitions=3,
        **overrides,
    )
    ensure_topics(settings)
    return settings


def make_api(settings: Settings, operator: str = "52003", *plmns: str) -> tuple[Api, Flask]:
    app = create_app(settings)
    _, key = issue_key(open_store(settings.database_url), operator, list(plmns))
    return Api(settings, app.test_client(), key), app


@pytest.fixture(scope="module")
def shared(
    kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Api, EndOffsets]]:
    api, app = make_api(module_settings(kafka_broker, tmp_path_factory.mktemp("api")))
    offsets = EndOffsets(api.settings)
    yield api, offsets
    offsets.close()
    app.extensions[EXTENSION_KEY].close()


@pytest.fixture
def api(shared: tuple[Api, EndOffsets]) -> Api:
    return shared[0]


@pytest.fixture
def nothing_published(shared: tuple[Api, EndOffsets]) -> Iterator[None]:
    """Fails the test if any input topic gained a record while it ran."""
    api, offsets = shared
    kinds = list(PATHS)
    before = {kind: offsets.total(api.topic(kind)) for kind in kinds}
    yield
    after = {kind: offsets.total(api.topic(kind)) for kind in kinds}
    assert after == before, "a refused request published records"


def pointers(response: TestResponse) -> list[str]:
    body = response.get_json()
    assert body is not None
    return [error["pointer"] for error in body["errors"]]


def sample(name: str, labels: dict[str, str]) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- accepted ---------------------------------------------------------------------


def test_one_activation_is_acknowledged_and_on_its_topic_keyed_by_imsi(api: Api) -> None:
    event = valid_activation(location={"country": "TH", "cell_id": "BKK-0001"}, imei=imei(3))
    before_ms = int(time.time() * 1000)

    response = api.post("activations", event)

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json() == {"accepted": 1, "event_ids": [event["event_id"]]}
    (record,) = api.published("activations", [event["event_id"]])
    assert record.key == event["imsi"]
    assert record.json() == event
    # The record's timestamp is the acceptance time ("received" for the workers).
    assert before_ms <= record.timestamp_ms <= int(time.time() * 1000)


def test_a_batch_is_acknowledged_in_order_and_every_event_is_on_the_topic(api: Api) -> None:
    events = [valid_network_event(imsi=imsi("52003", seed)) for seed in range(1, 6)]
    event_ids = [event["event_id"] for event in events]

    response = api.post("network_events", {"events": events})

    assert response.status_code == 202
    assert response.get_json() == {"accepted": 5, "event_ids": event_ids}
    records = api.published("network_events", event_ids)
    assert sorted(r.json()["event_id"] for r in records) == sorted(event_ids)
    assert all(r.key == r.json()["imsi"] for r in records)


def test_a_batch_of_usage_reports_is_on_the_usage_topic_as_sent(api: Api) -> None:
    events = [valid_usage(imsi=imsi("52003", seed), outgoing_calls=100 + seed) for seed in (1, 2)]

    response = api.post("usage", {"events": events})

    assert response.status_code == 202, response.get_data(as_text=True)
    records = api.published("usage", [event["event_id"] for event in events])
    assert sorted((r.json() for r in records), key=lambda e: e["imsi"]) == events
    assert api.settings.topic_usage.startswith("sim.usage.v1.")


def test_each_event_is_on_the_partition_kafkas_default_partitioner_gives_its_imsi(
    api: Api,
) -> None:
    events = [valid_network_event(imsi=imsi("52003", seed)) for seed in range(100, 130)]

    assert api.post("network_events", {"events": events}).status_code == 202

    records = api.published("network_events", [event["event_id"] for event in events])
    partitions = api.settings.topic_partitions
    assert len(records) == len(events)
    assert {r.partition for r in records} == set(range(partitions))
    for record in records:
        assert record.key is not None
        expected = (kafka_python_murmur2(record.key.encode()) & 0x7FFFFFFF) % partitions
        assert record.partition == expected, record.key


def test_timestamps_are_published_in_utc_z_form(api: Api) -> None:
    event = valid_activation(activated_at="2026-11-02T10:00:00+07:00")

    assert api.post("activations", event).status_code == 202

    (record,) = api.published("activations", [event["event_id"]])
    assert record.json()["activated_at"] == "2026-11-02T03:00:00Z"


def test_a_resent_batch_is_accepted_and_counted_again(api: Api) -> None:
    events = [valid_activation(imsi=imsi("52003", seed)) for seed in range(1, 4)]
    labels = {"kind": "activations", "operator": "52003"}
    before = sample("simguard_events_accepted_total", labels)

    first = api.post("activations", {"events": events})
    second = api.post("activations", {"events": events})

    assert first.get_json()["accepted"] == second.get_json()["accepted"] == 3
    assert sample("simguard_events_accepted_total", labels) - before == 6


def test_an_api_key_with_several_plmns_may_send_for_each(api: Api) -> None:
    _, key = issue_key(open_store(api.settings.database_url), "52003", ["52001"])
    two_plmns = dataclasses.replace(api, key=key)
    events = [valid_activation(operator="52003"), valid_activation(operator="52001")]

    response = two_plmns.post("activations", {"events": events})

    assert response.status_code == 202
    records = api.published("activations", [e["event_id"] for e in events])
    assert {r.key for r in records} == {imsi("52003", 1), imsi("52001", 1)}


# --- registrations: pseudonymised before anything leaves ----------------------------


def expected_holder_ref(secret: str, id_type: str, nationality: str, number: str) -> str:
    message = f"{id_type}:{nationality}:{number}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_a_registration_is_published_with_holder_ref_and_no_identity_number(
    api: Api, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    national_id = thai_national_id(777)
    n = national_id
    written = f"{n[0]}-{n[1:5]}-{n[5:10]}-{n[10:12]}-{n[12]}"
    event = valid_registration_request(holder=valid_holder(id_number=written))

    response = api.post("registrations", event)

    assert response.status_code == 202
    (record,) = api.published("registrations", [event["event_id"]])
    published = record.json()
    assert "holder" not in published
    assert published["holder_ref"] == expected_holder_ref(
        api.settings.hmac_secret, "national_id", "TH", national_id
    )
    assert published["holder_nationality"] == "TH"
    assert record.key == event["imsi"]
    for text in (record.value.decode(), caplog.text, *capfd.readouterr()):
        assert national_id not in text
        assert written not in text


def test_the_same_number_under_another_id_type_is_another_holder(api: Api) -> None:
    number = "AA1234567"
    passport = valid_registration_request(
        holder=valid_holder(id_type="passport", id_number=number, nationality="MM")
    )
    other = valid_registration_request(
        holder=valid_holder(id_type="other", id_number=number, nationality="MM")
    )

    response = api.post("registrations", {"events": [passport, other]})

    assert response.status_code == 202
    records = api.published("registrations", [passport["event_id"], other["event_id"]])
    refs = {r.json()["event_id"]: r.json()["holder_ref"] for r in records}
    assert refs[passport["event_id"]] == expected_holder_ref(
        api.settings.hmac_secret, "passport", "MM", number
    )
    assert refs[passport["event_id"]] != refs[other["event_id"]]


@pytest.mark.usefixtures("nothing_published")
def test_a_refused_registration_does_not_echo_the_identity_number(
    api: Api, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    valid_id = thai_national_id(778)
    wrong_check_digit = valid_id[:-1] + str((int(valid_id[-1]) + 1) % 10)
    event = valid_registration_request(holder=valid_holder(id_number=wrong_check_digit))

    response = api.post("registrations", event)

    assert response.status_code == 422
    assert pointers(response) == ["/holder/id_number"]
    for text in (response.get_data(as_text=True), caplog.text, *capfd.readouterr()):
        assert wrong_check_digit not in text


# --- refused: validation (422) ---------------------------------------------------------

FUTURE = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
BAD_ICCID = iccid(9)[:-1] + str((int(iccid(9)[-1]) + 1) % 10)
BAD_IMEI = imei(9)[:-1] + str((int(imei(9)[-1]) + 1) % 10)
NAIVE_TIME = "2026-11-02T03:00:00"
TOMORROW = (datetime.now(UTC) + timedelta(days=1, minutes=10)).date().isoformat()

INVALID_EVENTS: list[tuple[str, str, dict[str, Any], str]] = [
    ("activations", "event_id not a uuid", {"event_id": "42"}, "/event_id"),
    ("activations", "imsi of 14 digits", {"imsi": "52003000000001"}, "/imsi"),
    ("activations", "imsi of another operator", {"imsi": imsi("52001", 1)}, "/imsi"),
    ("activations", "iccid check digit", {"iccid": BAD_ICCID}, "/iccid"),
    ("activations", "msisdn of cambodia", {"msisdn": "+85512345678"}, "/msisdn"),
    ("activations", "msisdn missing", {"msisdn": OMIT}, "/msisdn"),
    ("activations", "unknown channel", {"channel": "carrier-pigeon"}, "/channel"),
    ("activations", "time in the future", {"activated_at": FUTURE}, "/activated_at"),
    ("activations", "location country", {"location": {"country": "XX"}}, "/location/country"),
    ("activations", "location not an object", {"location": "TH"}, "/location"),
    ("activations", "imei check digit", {"imei": BAD_IMEI}, "/imei"),
    ("activations", "unknown field", {"colour": "red"}, "/colour"),
    ("registrations", "verification", {"verification": "video_call"}, "/verification"),
    ("registrations", "status", {"status": "blocked"}, "/status"),
    ("registrations", "registered_at naive", {"registered_at": NAIVE_TIME}, "/registered_at"),
    (
        "registrations",
        "holder nationality",
        {"holder": valid_holder(id_type="passport", id_number="AA1", nationality="Thai")},
        "/holder/nationality",
    ),
    ("registrations", "holder missing", {"holder": OMIT}, "/holder"),
    ("registrations", "holder_ref instead of holder", {"holder_ref": "ab" * 32}, "/holder_ref"),
    ("network_events", "visited_plmn", {"visited_plmn": "12"}, "/visited_plmn"),
    ("network_events", "observed_at words", {"observed_at": "yesterday"}, "/observed_at"),
    ("network_events", "empty cell_id", {"cell_id": ""}, "/cell_id"),
    ("network_events", "operator of 7 digits", {"operator": "5200312"}, "/operator"),
    ("usage", "day as a timestamp", {"day": FUTURE}, "/day"),
    ("usage", "day not begun", {"day": TOMORROW}, "/day"),
    ("usage", "calls as a string", {"outgoing_calls": "12"}, "/outgoing_calls"),
    ("usage", "share above one", {"top_cell_share": 1.5}, "/top_cell_share"),
    (
        "usage",
        "more called numbers than calls",
        {"outgoing_calls": 2, "distinct_called_numbers": 3},
        "/distinct_called_numbers",
    ),
]


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    ("kind", "overrides", "pointer"),
    [pytest.param(kind, o, p, id=f"{kind}: {name}") for kind, name, o, p in INVALID_EVENTS],
)
def test_an_invalid_event_is_refused_naming_the_field_and_nothing_is_published(
    api: Api, kind: str, overrides: dict[str, Any], pointer: str
) -> None:
    response = api.post(kind, FACTORIES[kind](**overrides))

    assert response.status_code == 422
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["code"] == "INVALID_ARGUMENT"
    assert body["status"] == 422
    assert pointer in pointers(response)


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    ("kind", "overrides", "pointer"),
    [
        pytest.param(kind, o, p, id=f"{kind}: {name}")
        for kind, name, o, p in INVALID_EVENTS
        if name in {"location country", "holder nationality", "visited_plmn"}
    ],
)
def test_one_bad_event_refuses_the_whole_batch_naming_its_index(
    api: Api, kind: str, overrides: dict[str, Any], pointer: str
) -> None:
    factory = FACTORIES[kind]
    events = [factory(imsi=imsi("52003", seed)) for seed in range(1, 6)]
    events[3] = factory(imsi=imsi("52003", 4), **overrides)

    response = api.post(kind, {"events": events})

    assert response.status_code == 422
    assert pointers(response) == [f"/events/3{pointer}"]
    # What a consumer reads: none of the batch's valid events either.
    assert api.published(kind, [event["event_id"] for event in events]) == []


@pytest.mark.usefixtures("nothing_published")
def test_every_bad_event_of_a_batch_is_named(api: Api) -> None:
    events = [valid_activation(imsi=imsi("52003", seed)) for seed in range(1, 6)]
    events[1]["channel"] = "shop"
    events[4]["iccid"] = BAD_ICCID

    response = api.post("activations", {"events": events})

    assert response.status_code == 422
    assert sorted(pointers(response)) == ["/events/1/channel", "/events/4/iccid"]


@pytest.mark.usefixtures("nothing_published")
def test_a_batch_with_thousands_of_bad_members_lists_100_and_counts_the_rest(api: Api) -> None:
    events = [valid_activation(imsi=imsi("52003", seed)) for seed in range(1, 201)]
    for event in events:
        event.update({f"extra_{n}": n for n in range(20)})

    response = api.post("activations", {"events": events})

    assert response.status_code == 422
    body = response.get_json()
    assert len(body["errors"]) == 100
    assert body["errors_omitted"] == 200 * 20 - 100
    assert len(response.data) < 20_000


@pytest.mark.usefixtures("nothing_published")
def test_a_problem_with_few_errors_has_no_errors_omitted(api: Api) -> None:
    response = api.post("activations", valid_activation(channel="shop"))

    assert response.status_code == 422
    assert "errors_omitted" not in response.get_json()


@pytest.mark.usefixtures("nothing_published")
def test_an_unknown_member_named_like_an_identity_number_is_not_echoed(api: Api) -> None:
    national_id = "1101700230705"
    event = valid_activation() | {national_id: "holder"}

    response = api.post("activations", event)

    assert response.status_code == 422
    assert national_id not in response.get_data(as_text=True)
    assert pointers(response) == [""]


@pytest.mark.usefixtures("nothing_published")
def test_an_empty_batch_is_refused(api: Api) -> None:
    response = api.post("activations", {"events": []})

    assert response.status_code == 422
    assert pointers(response) == ["/events"]


def test_refused_events_are_counted_by_kind_and_reason(api: Api) -> None:
    labels = {"kind": "network_events", "reason": "invalid"}
    before = sample("simguard_events_rejected_total", labels)
    events = [valid_network_event(), valid_network_event(visited_plmn="1")]

    api.post("network_events", {"events": events})

    assert sample("simguard_events_rejected_total", labels) - before == 2


# --- refused: size (413) --------------------------------------------------------------


@pytest.mark.usefixtures("nothing_published")
def test_a_batch_of_1001_events_is_too_large(api: Api) -> None:
    events = [valid_network_event() for _ in range(1001)]

    response = api.post("network_events", {"events": events})

    assert response.status_code == 413
    assert response.get_json()["code"] == "PAYLOAD_TOO_LARGE"
    assert pointers(response) == ["/events"]


@pytest.mark.usefixtures("nothing_published")
def test_a_body_over_the_size_limit_is_too_large(api: Api) -> None:
    app = create_app(api.settings.replace(api_max_body_bytes=2048))
    small = dataclasses.replace(api, client=app.test_client())
    events = [valid_network_event(imsi=imsi("52003", seed)) for seed in range(20)]
    try:
        response = small.post("network_events", {"events": events})
    finally:
        app.extensions[EXTENSION_KEY].close()

    assert response.status_code == 413
    assert response.get_json()["code"] == "PAYLOAD_TOO_LARGE"


# --- refused: not JSON of the right shape (400) --------------------------------------------


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    ("raw", "content_type"),
    [
        pytest.param(b'{"event_id": ', "application/json", id="truncated json"),
        pytest.param(b"", "application/json", id="empty body"),
        pytest.param(b'{"imsi": "\xff\xfe"}', "application/json", id="invalid utf-8"),
        pytest.param(b"[]", "application/json", id="an array"),
        pytest.param(b'"event"', "application/json", id="a string"),
        pytest.param(b'{"events": {"0": {}}}', "application/json", id="events not an array"),
        pytest.param(b'{"events": [42]}', "application/json", id="an event not an object"),
        pytest.param(b"{}", "text/plain", id="text/plain"),
        pytest.param(b"{}", "application/x-www-form-urlencoded", id="form"),
        pytest.param(b"{}", "application/json; charset=latin-1", id="latin-1"),
    ],
)
def test_a_body_that_is_not_a_json_object_of_the_right_shape_is_malformed(
    api: Api, raw: bytes, content_type: str
) -> None:
    response = api.post("activations", None, raw=raw, content_type=content_type)

    assert response.status_code == 400
    assert response.mimetype == PROBLEM
    assert response.get_json()["code"] == "INVALID_ARGUMENT"


def test_invalid_utf8_is_named_as_such(api: Api) -> None:
    response = api.post("activations", None, raw=b'{"imsi": "\xff"}')

    assert "UTF-8" in response.get_json()["detail"]


# --- refused: who may send (401, 403) ---------------------------------------------------------


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing"),
        pytest.param("Bearer sg_0123456789ab_not-the-secret", id="unknown key"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic scheme"),
        pytest.param("Bearer ", id="empty bearer"),
    ],
)
def test_a_request_without_a_valid_key_is_unauthenticated(
    api: Api, authorization: str | None
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization

    response = api.client.post(
        PATHS["activations"], data=orjson.dumps(valid_activation()), headers=headers
    )

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.get_json()["code"] == "UNAUTHENTICATED"


def test_a_revoked_key_is_refused_once_its_cache_entry_expires(api: Api) -> None:
    store = open_store(api.settings.database_url)
    key_id, key = issue_key(store, "52003")
    revoked = dataclasses.replace(api, key=key)
    assert revoked.post("activations", valid_activation()).status_code == 202

    revoke(store, key_id)
    # What the cache's 30 s time to live does on its own.
    api.client.application.extensions[EXTENSION_KEY].authenticator._cache.clear()

    assert revoked.post("activations", valid_activation()).status_code == 401


@pytest.mark.usefixtures("nothing_published")
def test_events_for_another_operators_plmn_are_forbidden_and_named(api: Api) -> None:
    events = [
        valid_activation(),
        valid_activation(operator="52001"),
        valid_activation(),
        valid_activation(operator="45606", msisdn="+85512345678"),
    ]

    response = api.post("activations", {"events": events})

    assert response.status_code == 403
    assert response.get_json()["code"] == "PERMISSION_DENIED"
    assert pointers(response) == ["/events/1/operator", "/events/3/operator"]


@pytest.mark.usefixtures("nothing_published")
def test_a_single_event_for_another_operator_is_forbidden(api: Api) -> None:
    response = api.post("network_events", valid_network_event(operator="52001"))

    assert response.status_code == 403
    assert pointers(response) == ["/operator"]


# --- correlator ---------------------------------------------------------------------------


def test_the_callers_correlator_is_echoed_and_travels_with_the_records(api: Api) -> None:
    correlator = f"op-52003:{uuid.uuid4()}"
    event = valid_activation()

    response = api.post("activations", event, headers={"x-correlator": correlator})

    assert response.headers["x-correlator"] == correlator
    (record,) = api.published("activations", [event["event_id"]])
    assert dict(record.headers)["x-correlator"] == correlator.encode()


def test_a_correlator_is_generated_when_missing_also_on_errors(api: Api) -> None:
    accepted = api.post("activations", valid_activation())
    refused = api.post("activations", valid_activation(channel="shop"))

    for response in (accepted, refused):
        uuid.UUID(response.headers["x-correlator"])
    assert accepted.headers["x-correlator"] != refused.headers["x-correlator"]
    assert refused.get_json()["instance"].endswith(refused.headers["x-correlator"])


@pytest.mark.usefixtures("nothing_published")
def test_a_correlator_with_characters_outside_camaras_pattern_is_refused(api: Api) -> None:
    response = api.post("activations", valid_activation(), headers={"x-correlator": 'a b"c'})

    assert response.status_code == 400


# --- request log and HTTP metrics ----------------------------------------------------------------


def test_each_request_writes_one_json_log_line_without_the_key(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    capfd.readouterr()

    api.post("activations", {"events": [valid_activation(), valid_activation()]})

    lines = [orjson.loads(line) for line in capfd.readouterr().err.splitlines() if line]
    (line,) = [entry for entry in lines if entry.get("msg") == "request"]
    assert line["route"] == "/v1/activations"
    assert line["status"] == 202
    assert line["operator"] == "52003"
    assert line["accepted"] == 2
    uuid.UUID(line["correlator"])
    assert api.key not in orjson.dumps(lines).decode()


def test_http_metrics_are_labelled_with_the_route_template(api: Api) -> None:
    path = f"/v1/sims/{imsi('52003', 99)}"
    labels = {"route": "/v1/sims/<imsi>", "method": "GET", "status": "404"}
    before = sample("simguard_http_requests_total", labels)

    api.client.get(path, headers={"Authorization": f"Bearer {api.key}"})

    assert sample("simguard_http_requests_total", labels) - before == 1
    raw_path_labels = {**labels, "route": path}
    assert REGISTRY.get_sample_value("simguard_http_requests_total", raw_path_labels) is None
