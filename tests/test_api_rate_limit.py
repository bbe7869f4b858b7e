"""Per-operator rate limits: a token bucket per operator, counted in events.

The bucket arithmetic runs on a fake clock; the answers (429 problem with
Retry-After, the rejected-events counter, nothing published) come from the
app on the session's real broker and store.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from factories import imsi, valid_activation, valid_network_event
from flask import Flask
from kafka_helpers import end_offsets_total
from prometheus_client import REGISTRY
from test_api_ingest import PATHS, PROBLEM, module_settings
from werkzeug.test import TestResponse

from service import serve
from service.app import create_app
from service.context import EXTENSION_KEY
from service.problems import RateLimited
from service.rate_limit import (
    PROCESSES_ENV,
    RateLimiter,
    RateLimitPolicy,
    processes_from_environment,
    tokens_for,
)
from simguard.api_keys import issue_key
from simguard.broker import KafkaNode
from simguard.settings import ConfigError, Settings
from simguard.store import open_store

RATE_PER_SECOND = 1.0
BURST_EVENTS = 20


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def limiter(rate: float, burst: int, processes: int = 1) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    settings = Settings(api_rate_limit_per_second=rate, api_rate_limit_burst=burst)
    return RateLimiter(RateLimitPolicy.from_settings(settings, processes), clock=clock), clock


# --- the bucket ------------------------------------------------------------------------


def test_no_limit_when_the_rate_is_zero() -> None:
    bucket, _ = limiter(rate=0, burst=10)

    assert bucket.policy is None
    assert bucket.spend("52003", 1_000_000) == 0.0


def test_a_full_bucket_admits_the_burst_and_then_names_the_wait() -> None:
    bucket, _ = limiter(rate=10, burst=20)

    assert bucket.spend("52003", 20) == 0.0
    assert bucket.spend("52003", 1) == pytest.approx(0.1)


def test_a_body_is_charged_at_least_a_token_per_2_kib() -> None:
    assert tokens_for(events=3, body_bytes=1_500) == 3
    assert tokens_for(events=3, body_bytes=2_600_000) == 1_270


def test_a_few_events_padded_to_megabytes_are_refused_like_that_many_events() -> None:
    bucket, _ = limiter(rate=100, burst=200)

    bucket.admit("52003", events=2, body_bytes=4_000_000)
    with pytest.raises(RateLimited):
        bucket.admit("52003", events=1)


def test_limits_are_on_by_default() -> None:
    policy = RateLimitPolicy.from_settings(Settings())

    assert policy is not None and policy.events_per_second == 5_000


def test_events_are_counted_not_requests() -> None:
    bucket, _ = limiter(rate=10, burst=20)
    assert bucket.spend("52003", 15) == 0.0

    assert bucket.spend("52003", 6) == pytest.approx(0.1)
    assert bucket.spend("52003", 5) == 0.0


def test_tokens_come_back_at_the_configured_rate_up_to_the_burst() -> None:
    bucket, clock = limiter(rate=10, burst=20)
    bucket.spend("52003", 20)

    clock.advance(0.5)
    assert bucket.spend("52003", 6) == pytest.approx(0.1)
    assert bucket.spend("52003", 5) == 0.0

    clock.advance(3_600)
    assert bucket.spend("52003", 20) == 0.0
    assert bucket.spend("52003", 1) > 0


def test_a_batch_larger_than_the_burst_needs_a_full_bucket_and_leaves_a_debt() -> None:
    bucket, clock = limiter(rate=10, burst=100)
    bucket.spend("52003", 1)
    # Not full: it waits for the one missing token, not for 500.
    assert bucket.spend("52003", 500) == pytest.approx(0.1)

    clock.advance(0.1)
    assert bucket.spend("52003", 500) == 0.0
    # 400 events of debt and one more: the long-run rate holds.
    assert bucket.spend("52003", 1) == pytest.approx(40.1)


def test_each_operator_has_its_own_bucket() -> None:
    bucket, _ = limiter(rate=10, burst=20)
    bucket.spend("52003", 20)

    assert bucket.spend("52001", 20) == 0.0


def test_a_refused_request_spends_nothing() -> None:
    bucket, clock = limiter(rate=10, burst=20)
    bucket.spend("52003", 20)
    assert bucket.spend("52003", 10) > 0

    clock.advance(1.0)
    assert bucket.spend("52003", 10) == 0.0


def test_without_a_burst_one_seconds_worth_of_events_is_allowed() -> None:
    policy = RateLimitPolicy.from_settings(Settings(api_rate_limit_per_second=50.5))

    assert policy == RateLimitPolicy(events_per_second=50.5, burst_events=51)


def test_each_process_admits_its_share_of_the_instance_limit() -> None:
    settings = Settings(api_rate_limit_per_second=100, api_rate_limit_burst=1000)

    policy = RateLimitPolicy.from_settings(settings, processes=4)

    assert policy == RateLimitPolicy(events_per_second=25, burst_events=250)


def test_a_share_of_the_burst_still_fits_one_event() -> None:
    settings = Settings(api_rate_limit_per_second=1, api_rate_limit_burst=1)

    policy = RateLimitPolicy.from_settings(settings, processes=8)

    assert policy is not None
    assert policy.burst_events == 1.0


def test_an_over_limit_request_raises_a_429_problem_with_whole_seconds_to_wait() -> None:
    bucket, _ = limiter(rate=2, burst=4)
    bucket.admit("52003", 4)

    with pytest.raises(RateLimited) as refused:
        bucket.admit("52003", 3)

    assert (refused.value.status, refused.value.code) == (429, "RESOURCE_EXHAUSTED")
    assert refused.value.headers == {"Retry-After": "2"}


@pytest.mark.parametrize(
    ("rate", "burst", "processes"),
    [(-1.0, 10, 1), (float("nan"), 10, 1), (float("inf"), 10, 1), (10.0, -1, 1), (10.0, 10, 0)],
)
def test_nonsense_limits_are_configuration_errors(rate: float, burst: int, processes: int) -> None:
    settings = Settings(api_rate_limit_per_second=rate, api_rate_limit_burst=burst)

    with pytest.raises(ConfigError):
        RateLimitPolicy.from_settings(settings, processes)


def test_the_process_count_comes_from_the_environment() -> None:
    assert processes_from_environment({}) == 1
    assert processes_from_environment({PROCESSES_ENV: "4"}) == 4
    with pytest.raises(ConfigError):
        processes_from_environment({PROCESSES_ENV: "four"})


def test_simguard_api_tells_its_workers_how_many_share_the_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    seen: dict[str, str] = {}

    class Recorder:
        def __init__(self, bind: str, workers: int) -> None:
            del bind, workers

        def run(self) -> None:
            seen["processes"] = os.environ[PROCESSES_ENV]

    (tmp_path / "empty.toml").write_text("")
    for name in [n for n in os.environ if n.startswith("SIMGUARD_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("SIMGUARD_CONFIG", str(tmp_path / "empty.toml"))
    monkeypatch.setenv("SIMGUARD_HMAC_SECRET", "rate-limit-test-".ljust(32, "0"))
    monkeypatch.setenv("SIMGUARD_ATTESTATION_SECRET", "rate-limit-attestation-".ljust(32, "0"))
    monkeypatch.setenv("SIMGUARD_API_RATE_LIMIT_PER_SECOND", "100")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "metrics"))
    # Restored after the test, whatever run_gunicorn writes.
    monkeypatch.setenv(PROCESSES_ENV, "1")
    monkeypatch.setattr(serve, "prometheus_multiprocess_ready", lambda: True)
    monkeypatch.setattr(serve, "SimguardApplication", Recorder)

    serve.run_gunicorn("127.0.0.1:0", workers=3)

    assert seen == {"processes": "3"}


# --- over HTTP -----------------------------------------------------------------------------


@dataclass
class LimitedApi:
    app: Flask
    settings: Settings
    keys: dict[str, str]

    def post(self, kind: str, operator: str, body: Any) -> TestResponse:
        return self.app.test_client().post(
            PATHS[kind],
            data=orjson.dumps(body),
            headers={
                "Authorization": f"Bearer {self.keys[operator]}",
                "Content-Type": "application/json",
            },
        )

    def published(self) -> int:
        return sum(end_offsets_total(self.settings, topic) for topic in self.input_topics())

    def input_topics(self) -> list[str]:
        return [self.settings.topics()[kind] for kind in PATHS]


# One operator per test: the app (and its buckets) is shared by the module.
OPERATORS = ("52001", "52003", "52004", "52005", "52015", "52018", "52047")


@pytest.fixture(scope="module")
def limited(
    kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LimitedApi]:
    settings = module_settings(
        kafka_broker,
        tmp_path_factory.mktemp("rate-limit"),
        api_rate_limit_per_second=RATE_PER_SECOND,
        api_rate_limit_burst=BURST_EVENTS,
    )
    store = open_store(settings.database_url)
    keys = {operator: issue_key(store, operator)[1] for operator in OPERATORS}
    app = create_app(settings)
    yield LimitedApi(app, settings, keys)
    app.extensions[EXTENSION_KEY].close()


def network_events(operator: str, count: int) -> list[dict[str, Any]]:
    return [
        valid_network_event(operator=operator, imsi=imsi(operator, seed))
        for seed in range(1, count + 1)
    ]


def rejected(reason: str, kind: str) -> float:
    labels = {"kind": kind, "reason": reason}
    return REGISTRY.get_sample_value("simguard_events_rejected_total", labels) or 0.0


def test_an_operator_over_its_limit_gets_a_429_problem_with_retry_after(
    limited: LimitedApi,
) -> None:
    operator = "52001"
    before = limited.published()
    first = limited.post("network_events", operator, {"events": network_events(operator, 20)})
    assert first.status_code == 202

    response = limited.post("network_events", operator, {"events": network_events(operator, 5)})

    assert response.status_code == 429
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert (body["status"], body["code"]) == (429, "RESOURCE_EXHAUSTED")
    # Five events at one a second, from an empty bucket.
    assert response.headers["Retry-After"] == "5"
    assert "x-correlator" in response.headers
    assert limited.published() == before + 20


def test_the_burst_is_accepted_in_one_batch(limited: LimitedApi) -> None:
    operator = "52003"

    response = limited.post(
        "network_events", operator, {"events": network_events(operator, BURST_EVENTS)}
    )

    assert response.status_code == 202, response.get_data(as_text=True)
    assert response.get_json()["accepted"] == BURST_EVENTS


def test_refused_events_are_counted_as_rate_limited(limited: LimitedApi) -> None:
    operator = "52004"
    limited.post("network_events", operator, {"events": network_events(operator, 20)})
    before = rejected("rate_limited", "network_events")

    response = limited.post("network_events", operator, {"events": network_events(operator, 7)})

    assert response.status_code == 429
    assert rejected("rate_limited", "network_events") - before == 7


def test_one_limit_covers_all_kinds_of_events(limited: LimitedApi) -> None:
    operator = "52005"
    activations = [
        valid_activation(operator=operator, imsi=imsi(operator, seed)) for seed in range(20)
    ]
    assert limited.post("activations", operator, {"events": activations}).status_code == 202

    response = limited.post("network_events", operator, valid_network_event(operator=operator))

    assert response.status_code == 429


def test_a_busy_operator_does_not_slow_another(limited: LimitedApi) -> None:
    busy, quiet = "52015", "52018"
    limited.post("network_events", busy, {"events": network_events(busy, 20)})
    assert limited.post("network_events", busy, valid_network_event(operator=busy)).status_code == (
        429
    )

    response = limited.post("network_events", quiet, valid_network_event(operator=quiet))

    assert response.status_code == 202


def test_a_refusal_logs_the_operator_and_never_the_key(
    limited: LimitedApi, caplog: pytest.LogCaptureFixture
) -> None:
    operator = "52047"
    limited.post("network_events", operator, {"events": network_events(operator, 20)})

    caplog.clear()

    with caplog.at_level(logging.INFO, logger="simguard"):
        response = limited.post("network_events", operator, valid_network_event(operator=operator))

    assert response.status_code == 429
    logged = [getattr(record, "fields", {}) for record in caplog.records]
    assert [(line.get("status"), line.get("operator")) for line in logged] == [(429, operator)]
    assert all(limited.keys[operator] not in repr(vars(record)) for record in caplog.records)


def test_the_openapi_document_declares_429_with_retry_after(limited: LimitedApi) -> None:
    document = limited.app.test_client().get("/openapi.json").get_json()

    for path in PATHS.values():
        answer = document["paths"][path]["post"]["responses"]["429"]
        assert "Retry-After" in answer["headers"]
        assert PROBLEM in answer["content"]
