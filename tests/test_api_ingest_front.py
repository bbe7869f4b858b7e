"""The ingest routes' WSGI front: it serves the ingest POSTs without Flask's
per-request machinery, and a client cannot tell its answers from the Flask
view's. The app runs in-process against the test run's real broker and a real
SQLite store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from factories import valid_activation, valid_registration_request
from flask import Flask, request
from werkzeug.test import Client, TestResponse

from service.app import create_app
from service.context import EXTENSION_KEY
from service.ingest_front import IngestFront
from simguard.api_keys import issue_key
from simguard.store import open_store


@pytest.fixture
def app(make_settings: Any) -> Iterator[Flask]:
    app = create_app(make_settings())
    yield app
    app.extensions[EXTENSION_KEY].close()


@pytest.fixture
def key(app: Flask) -> str:
    settings = app.extensions[EXTENSION_KEY].settings
    _, key = issue_key(open_store(settings.database_url), "52003", [])
    return key


def flask_only(app: Flask) -> Client:
    """A client of the app with the front taken away: Flask's own view serves."""
    front = app.wsgi_app
    assert isinstance(front, IngestFront)
    return Client(front.app)


def post(client: Client, path: str, body: bytes, headers: dict[str, str]) -> TestResponse:
    return client.post(path, data=body, headers=headers)


def test_ingest_posts_are_served_without_flasks_request_hooks(app: Flask, key: str) -> None:
    hooked: list[str] = []
    app.before_request(lambda: hooked.append(request.path))
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    client = app.test_client()

    ingested = client.post(
        "/v1/activations", data=orjson.dumps(valid_activation()), headers=headers
    )
    documented = client.get("/openapi.json")

    assert ingested.status_code == 202
    assert documented.status_code == 200
    assert hooked == ["/openapi.json"]


REQUESTS: dict[str, tuple[str, bytes, dict[str, str]]] = {
    "accepted": ("/v1/activations", orjson.dumps(valid_activation()), {}),
    "accepted batch": (
        "/v1/registrations",
        orjson.dumps({"events": [valid_registration_request(), valid_registration_request()]}),
        {},
    ),
    "not json": ("/v1/activations", b"{nope", {}),
    "wrong content type": ("/v1/activations", b"{}", {"Content-Type": "text/plain"}),
    "invalid event": ("/v1/activations", orjson.dumps(valid_activation(imsi="12")), {}),
    "another operator": (
        "/v1/activations",
        orjson.dumps(valid_activation(operator="52001")),
        {},
    ),
    "no key": ("/v1/network-events", b"{}", {"Authorization": ""}),
    "bad correlator": ("/v1/activations", b"{}", {"x-correlator": "not allowed!"}),
}


@pytest.mark.parametrize("case", list(REQUESTS))
def test_the_front_answers_as_the_flask_view_does(app: Flask, key: str, case: str) -> None:
    path, body, extra = REQUESTS[case]
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": "application/json",
        "x-correlator": f"case-{case.replace(' ', '-')}",
    } | extra

    through_front = post(app.test_client(), path, body, headers)
    through_flask = post(flask_only(app), path, body, headers)

    assert through_front.status == through_flask.status
    assert without_correlator(through_front) == without_correlator(through_flask)
    if case == "bad correlator":
        # A refused correlator is replaced by a new one on each answer.
        assert through_front.headers["x-correlator"] != headers["x-correlator"]
    else:
        assert through_front.headers["x-correlator"] == through_flask.headers["x-correlator"]
        assert through_front.get_data() == through_flask.get_data()


def without_correlator(response: TestResponse) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    headers = sorted((k, v) for k, v in response.headers.items() if k != "x-correlator")
    return headers, {**orjson.loads(response.get_data()), "instance": None}


def test_the_front_writes_the_log_line_flask_writes(
    app: Flask, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = orjson.dumps(valid_activation())

    with caplog.at_level(logging.INFO, logger="simguard.api"):
        post(app.test_client(), "/v1/activations", body, headers)
        post(flask_only(app), "/v1/activations", body, headers)

    front, flask = (
        {k: v for k, v in r.fields.items() if k not in ("correlator", "duration_ms")}  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "request"
    )
    assert (
        front
        == flask
        == {
            "method": "POST",
            "route": "/v1/activations",
            "status": 202,
            "operator": "52003",
            "accepted": 1,
        }
    )


def test_a_store_that_cannot_be_opened_is_a_500_problem_from_the_front(
    make_settings: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    app = create_app(make_settings().replace(database_url=f"sqlite:///{blocked}/simguard.db"))

    with caplog.at_level(logging.ERROR, logger="simguard.api"):
        response = app.test_client().post(
            "/v1/activations",
            data=orjson.dumps(valid_activation()),
            headers={"Authorization": "Bearer sg_x_y", "Content-Type": "application/json"},
        )

    assert response.status_code == 500
    assert response.mimetype == "application/problem+json"
    problem = response.get_json()
    assert problem["code"] == "INTERNAL"
    assert problem["instance"] == f"urn:simguard:request:{response.headers['x-correlator']}"
    assert "not-a-directory" not in response.get_data(as_text=True)
    assert [r.getMessage() for r in caplog.records] == ["unhandled error"]
    app.extensions[EXTENSION_KEY].close()
