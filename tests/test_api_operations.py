"""What ops and orchestrators rely on: liveness, readiness, metrics, problem
answers for everything that goes wrong, and refusal to start half-configured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.broker import free_port
from simguard.settings import ConfigError

PROBLEM = "application/problem+json"


@pytest.fixture
def app(make_settings: Any) -> Iterator[Flask]:
    app = create_app(make_settings())
    yield app
    app.extensions[EXTENSION_KEY].close()


def test_liveness_needs_nothing_but_the_process(make_settings: Any) -> None:
    nowhere = make_settings().replace(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    app = create_app(nowhere)

    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_ready_when_kafka_and_the_store_answer(app: Flask) -> None:
    response = app.test_client().get("/readyz")

    assert response.status_code == 200
    assert response.get_json()["checks"] == {"kafka": "ok", "store": "ok"}


def test_not_ready_names_kafka_when_no_broker_answers(make_settings: Any) -> None:
    nowhere = make_settings().replace(kafka_bootstrap_servers=f"127.0.0.1:{free_port()}")
    client = create_app(nowhere).test_client()
    threads_before = threading.active_count()

    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.mimetype == PROBLEM
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/checks/kafka"]
    # A probe repeated through an outage must not leave client threads behind.
    assert threading.active_count() <= threads_before


def test_not_ready_names_the_store_when_it_cannot_be_opened(
    make_settings: Any, tmp_path: Any
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    app = create_app(make_settings().replace(database_url=f"sqlite:///{blocked}/simguard.db"))

    response = app.test_client().get("/readyz")

    assert response.status_code == 503
    assert [e["pointer"] for e in response.get_json()["errors"]] == ["/checks/store"]
    app.extensions[EXTENSION_KEY].close()


def test_metrics_are_exposed_in_the_prometheus_text_format(app: Flask) -> None:
    client = app.test_client()
    client.get("/healthz")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'simguard_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert "simguard_http_request_duration_seconds_bucket" in text


def test_an_unknown_route_is_a_404_problem(app: Flask) -> None:
    response = app.test_client().get("/v1/nothing-here")

    assert response.status_code == 404
    assert response.mimetype == PROBLEM
    assert response.get_json()["code"] == "NOT_FOUND"
    assert response.headers["x-correlator"]


def test_a_wrong_method_is_a_405_problem_naming_the_allowed_ones(app: Flask) -> None:
    response = app.test_client().get("/v1/activations")

    assert response.status_code == 405
    assert response.mimetype == PROBLEM
    assert response.headers["Allow"] == "POST"


def test_an_unexpected_error_is_a_500_problem_without_internals(app: Flask) -> None:
    def explode() -> str:
        raise RuntimeError("database password is hunter2")

    app.add_url_rule("/explode", view_func=explode)

    response = app.test_client().get("/explode")

    assert response.status_code == 500
    assert response.mimetype == PROBLEM
    assert response.get_json()["code"] == "INTERNAL"
    assert "hunter2" not in response.get_data(as_text=True)


def test_the_app_refuses_to_start_without_an_hmac_secret(make_settings: Any) -> None:
    with pytest.raises(ConfigError, match="hmac_secret"):
        create_app(make_settings().replace(hmac_secret=""))


def test_the_app_refuses_to_start_without_an_attestation_secret(make_settings: Any) -> None:
    with pytest.raises(ConfigError, match="attestation_secret"):
        create_app(make_settings().replace(attestation_secret=""))
