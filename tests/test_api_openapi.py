"""GET /openapi.json: a valid OpenAPI document of exactly the app's routes,
generated from the marshmallow schemas that validate the requests."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from openapi_spec_validator import validate

from schemas.events import EVENT_KINDS
from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.settings import Settings

INGEST_PATHS = {
    "/v1/activations": ("Activation", "ActivationBatch"),
    "/v1/registrations": ("RegistrationRequest", "RegistrationBatch"),
    "/v1/network-events": ("NetworkEvent", "NetworkEventBatch"),
}
PROBLEM_STATUSES = ("400", "401", "403", "413", "422", "503")
PUBLIC_PATHS = ("/healthz", "/readyz", "/metrics", "/openapi.json")


@pytest.fixture(scope="module")
def app() -> Iterator[Flask]:
    # The document needs no broker or store: the app connects on first use only.
    app = create_app(
        Settings(
            hmac_secret="openapi-test",
            attestation_secret="openapi-attestation",
            database_url="sqlite:///:memory:",
        )
    )
    yield app
    app.extensions[EXTENSION_KEY].close()


@pytest.fixture(scope="module")
def document(app: Flask) -> dict[str, Any]:
    response = app.test_client().get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def test_the_document_is_valid_openapi(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.")


def test_the_document_lists_exactly_the_apps_routes_and_methods(
    app: Flask, document: dict[str, Any]
) -> None:
    served = {
        (re.sub(r"<([a-z_]+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }
    documented = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }

    assert documented == served
    assert ("/v1/sims/{imsi}", "get") in documented


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_ingest_takes_one_event_or_a_batch(document: dict[str, Any], path: str) -> None:
    body = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]

    single, batch = INGEST_PATHS[path]
    assert body["schema"]["oneOf"] == [
        {"$ref": f"#/components/schemas/{single}"},
        {"$ref": f"#/components/schemas/{batch}"},
    ]
    events = document["components"]["schemas"][batch]["properties"]["events"]
    assert (events["minItems"], events["maxItems"]) == (1, 1000)


@pytest.mark.parametrize("path", INGEST_PATHS)
def test_ingest_documents_every_problem_answer(document: dict[str, Any], path: str) -> None:
    responses = document["paths"][path]["post"]["responses"]

    assert "202" in responses
    for status in PROBLEM_STATUSES:
        content = responses[status]["content"]
        assert content == {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    assert "Retry-After" in responses["503"]["headers"]
    assert "WWW-Authenticate" in responses["401"]["headers"]


def test_the_problem_schema_has_the_rfc_9457_members_and_ours(document: dict[str, Any]) -> None:
    problem = document["components"]["schemas"]["Problem"]

    assert set(problem["properties"]) == {
        "type",
        "title",
        "status",
        "detail",
        "code",
        "errors",
        "instance",
        "errors_omitted",
    }


def test_event_components_are_the_validating_schemas(document: dict[str, Any]) -> None:
    components = document["components"]["schemas"]
    for component, kind in [
        ("Activation", "activations"),
        ("RegistrationRequest", "registrations"),
        ("NetworkEvent", "network_events"),
    ]:
        schema = EVENT_KINDS[kind].request_schema()
        required = {name for name, field in schema.fields.items() if field.required}
        assert set(components[component]["properties"]) == set(schema.fields)
        assert set(components[component]["required"]) == required


def test_the_raw_identity_document_is_only_in_the_registration_request(
    document: dict[str, Any],
) -> None:
    components = document["components"]["schemas"]

    assert "holder" in components["RegistrationRequest"]["properties"]
    assert "holder_ref" not in components["RegistrationRequest"]["properties"]


def test_bearer_auth_is_required_except_on_operational_routes(document: dict[str, Any]) -> None:
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An operator API key.",
    }
    assert document["security"] == [{"bearerAuth": []}]
    for path in PUBLIC_PATHS:
        assert document["paths"][path]["get"]["security"] == []
    for path in [*INGEST_PATHS, "/v1/sims/{imsi}"]:
        for operation in document["paths"][path].values():
            assert "security" not in operation
