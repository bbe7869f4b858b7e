"""Posting a scenario: the order of kinds, the shape of batches, resending on
429 and 503, stopping at a refusal, and loopback only. A small HTTP server on
loopback stands in for the API and records what it receives."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from simguard.settings import Rules, load_settings
from tooling.simulator.population import Mix, Scenario, generate
from tooling.simulator.post import PostError, batches, post

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
KEYS = {plmn: f"sg_key{plmn}_secret" for plmn in ("52001", "52003", "52004", "52005")}


@dataclasses.dataclass
class Received:
    path: str
    authorization: str
    events: list[dict[str, Any]]


class RecordingApi:
    """Answers 202 unless told otherwise per path: `script[path]` is a list of
    (status, body) answers used up one request at a time."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = orjson.loads(self.rfile.read(length))
                with api.lock:
                    api.received.append(
                        Received(self.path, self.headers["Authorization"], body["events"])
                    )
                    planned = api.script.get(self.path, [])
                    status, answer = planned.pop(0) if planned else (202, {})
                if status == 202:
                    answer = {
                        "accepted": len(body["events"]),
                        "event_ids": [e["event_id"] for e in body["events"]],
                    }
                payload = orjson.dumps(answer)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if status in (429, 503):
                    self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[RecordingApi]:
    server = RecordingApi()
    yield server
    server.close()


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    empty = tmp_path_factory.mktemp("config") / "empty.toml"
    empty.write_text("")
    rules: Rules = load_settings(environ={"SIMGUARD_CONFIG": str(empty)}).rules
    quiet = Mix(**{field.name: 0.0 for field in dataclasses.fields(Mix)})
    mix = quiet.with_fractions(mule=0.05, revoked=0.05, border_dweller=0.05)
    return generate(300, seed=11, now=NOW, rules=rules, mix=mix)


def test_registrations_are_all_answered_before_activations_network_events_then_usage(
    api: RecordingApi, scenario: Scenario
) -> None:
    report = post(scenario, api.url, KEYS, batch_size=50, concurrency=4)
    paths = [r.path for r in api.received]
    order = ["/v1/registrations", "/v1/activations", "/v1/network-events", "/v1/usage"]
    assert paths == sorted(paths, key=order.index)
    assert report.accepted == report.sent == sum(scenario.counts().values())
    assert report.refused == 0


def test_a_batch_carries_whole_sims_of_one_operator_with_its_key(
    api: RecordingApi, scenario: Scenario
) -> None:
    post(scenario, api.url, KEYS, batch_size=40, concurrency=3)
    requests_of_sim: dict[tuple[str, str], set[int]] = {}
    for index, request in enumerate(api.received):
        operators = {e["operator"] for e in request.events}
        assert len(operators) == 1
        assert request.authorization == f"Bearer {KEYS[operators.pop()]}"
        assert len(request.events) <= 40
        for event in request.events:
            requests_of_sim.setdefault((request.path, event["imsi"]), set()).add(index)
    assert all(len(indexes) == 1 for indexes in requests_of_sim.values())


def test_each_sims_events_keep_their_event_time_order(scenario: Scenario) -> None:
    time_field = {"activations": "activated_at", "network_events": "observed_at"}
    for kind, field in time_field.items():
        for batch in batches(scenario.events[kind], 100):
            per_sim: dict[str, list[str]] = {}
            for event in batch:
                per_sim.setdefault(event["imsi"], []).append(event[field])
            assert all(times == sorted(times) for times in per_sim.values())


def test_a_503_is_resent_and_counted_as_a_retry(api: RecordingApi, scenario: Scenario) -> None:
    api.script["/v1/activations"] = [(503, {"code": "UNAVAILABLE"})]
    report = post(scenario, api.url, KEYS, batch_size=500, concurrency=1)
    assert report.kinds["activations"].retries == 1
    assert report.accepted == sum(scenario.counts().values())


def test_a_429_is_resent_after_its_retry_after_and_counted_as_a_retry(
    api: RecordingApi, scenario: Scenario
) -> None:
    api.script["/v1/network-events"] = [(429, {"code": "RESOURCE_EXHAUSTED"})] * 2
    report = post(scenario, api.url, KEYS, batch_size=500, concurrency=1)
    assert report.kinds["network_events"].retries == 2
    assert report.accepted == sum(scenario.counts().values())


def test_a_refused_batch_raises_with_the_problem_and_stops_the_run(
    api: RecordingApi, scenario: Scenario
) -> None:
    problem = {"status": 422, "code": "INVALID_ARGUMENT", "errors": [{"pointer": "/events/0"}]}
    api.script["/v1/activations"] = [(422, problem)]
    with pytest.raises(PostError) as raised:
        post(scenario, api.url, KEYS, batch_size=500, concurrency=1)
    assert raised.value.status == 422
    assert raised.value.problem == problem
    assert raised.value.report.kinds["activations"].refused > 0
    assert "/v1/network-events" not in {r.path for r in api.received}


@pytest.mark.parametrize(
    "url", ["http://10.1.2.3:8080", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:8080"]
)
def test_only_loopback_http_urls_are_accepted(
    api: RecordingApi, scenario: Scenario, url: str
) -> None:
    with pytest.raises(ValueError):
        post(scenario, url, KEYS)
    assert api.received == []


def test_an_operator_without_a_key_stops_the_run_before_anything_is_sent(
    api: RecordingApi, scenario: Scenario
) -> None:
    partial = {plmn: key for plmn, key in KEYS.items() if plmn != "52004"}
    with pytest.raises(ValueError, match="52004"):
        post(scenario, api.url, partial)
    assert api.received == []


def test_localhost_by_name_is_loopback(api: RecordingApi, scenario: Scenario) -> None:
    url = api.url.replace("127.0.0.1", "localhost")
    assert post(scenario, url, KEYS).accepted == sum(scenario.counts().values())
