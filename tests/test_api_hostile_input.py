"""Hostile HTTP input: whatever a client sends, the API answers with a
problem (never a 5xx, never a crash), names what is wrong with pointers that
exist in what was sent, and publishes nothing of a refused request.

Three sources of input:
- schemathesis, in NEGATIVE mode, from the OpenAPI document: the examples,
  coverage (boundary values) and fuzzing phases, bounded per operation. Its
  stateful phase is not run: the document declares no links (a POST answers
  event ids that no operation takes; `GET /v1/sims/{imsi}` takes an IMSI from
  the caller), so there is nothing to chain, which a test below keeps true.
- hypothesis: arbitrary JSON values as bodies, and valid events with one
  field replaced by an arbitrary JSON value.
- hand-written extremes: oversized and chunked bodies, 100,000 levels of
  nesting, wrong content types, invalid UTF-8, a batch of 1,000 with one bad
  event, a batch of 1,001.

The app runs in-process on the session's real broker and a real SQLite store.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import orjson
import pytest
import schemathesis
from factories import imsi, valid_activation, valid_network_event, valid_registration_request
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kafka_helpers import end_offsets_total
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from test_api_ingest import PATHS, PROBLEM, Api, EndOffsets, make_api, module_settings
from werkzeug.test import TestResponse

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.broker import KafkaNode
from simguard.settings import Settings

DOCUMENT_APP = create_app(
    Settings(
        hmac_secret="document-only",
        attestation_secret="document-attestation",
        database_url="sqlite:///:memory:",
    )
)
# The operations that take input; the others have no parameter to make invalid.
schema = schemathesis.openapi.from_wsgi("/openapi.json", DOCUMENT_APP).include(path_regex="^/v1/")
schema.config.generation.update(modes=[GenerationMode.NEGATIVE], max_examples=30)
schema.config.phases.update(phases=["examples", "coverage", "fuzzing"])

FACTORIES: Final = {
    "activations": valid_activation,
    "registrations": valid_registration_request,
    "network_events": valid_network_event,
}
# The codes a refusal may carry (DESIGN.md "Guarantees").
REFUSAL_CODES: Final = {
    "INVALID_ARGUMENT",
    "PAYLOAD_TOO_LARGE",
    "UNAUTHENTICATED",
    "PERMISSION_DENIED",
    "NOT_FOUND",
    "METHOD_NOT_ALLOWED",
    "RESOURCE_EXHAUSTED",
    "CONFLICT",
}
MISSING_FIELD: Final = "Missing data for required field."
NESTING_LEVELS: Final = 100_000


@dataclass
class Hostile:
    api: Api
    offsets: EndOffsets

    @property
    def settings(self) -> Settings:
        return self.api.settings

    def input_offsets(self) -> dict[str, int]:
        """Records ever written to each input topic, as any consumer sees them."""
        return {kind: end_offsets_total(self.settings, self.api.topic(kind)) for kind in FACTORIES}

    def quick_input_offsets(self) -> dict[str, int]:
        """The same, from one long-lived consumer: milliseconds per check."""
        return {kind: self.offsets.total(self.api.topic(kind)) for kind in FACTORIES}

    def send(
        self, kind: str, raw: bytes, content_type: str | None = "application/json"
    ) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.api.key}"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        return self.api.client.post(PATHS[kind], data=raw, headers=headers)

    def send_chunked(self, kind: str, raw: bytes) -> TestResponse:
        """Without Content-Length, as gunicorn passes a chunked upload on."""
        return self.api.client.post(
            PATHS[kind],
            input_stream=io.BytesIO(raw),
            headers={
                "Authorization": f"Bearer {self.api.key}",
                "Content-Type": "application/json",
                "Transfer-Encoding": "chunked",
            },
            environ_overrides={"wsgi.input_terminated": True},
        )


@pytest.fixture(scope="module")
def hostile(kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hostile]:
    api, app = make_api(module_settings(kafka_broker, tmp_path_factory.mktemp("hostile")))
    offsets = EndOffsets(api.settings)
    yield Hostile(api, offsets)
    offsets.close()
    app.extensions[EXTENSION_KEY].close()


@pytest.fixture
def nothing_published(hostile: Hostile) -> Iterator[None]:
    before = hostile.quick_input_offsets()
    yield
    assert hostile.quick_input_offsets() == before, "a refused request published records"


# --- what every refusal looks like -------------------------------------------------------

_ABSENT: Final = object()


def resolve(document: Any, pointer: str) -> Any:
    """The value at a JSON pointer (RFC 6901), or _ABSENT."""
    if pointer == "":
        return document
    node = document
    for raw_token in pointer.removeprefix("/").split("/"):
        token = raw_token.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return _ABSENT
    return node


def assert_names_what_was_sent(errors: list[dict[str, str]], body: Any) -> None:
    """Every pointer is in the body, or names a required member missing from
    an object that is."""
    assert errors, "a refusal must name at least one problem"
    for error in errors:
        pointer, message = error["pointer"], error["message"]
        assert pointer == "" or pointer.startswith("/"), pointer
        if resolve(body, pointer) is not _ABSENT:
            continue
        parent = resolve(body, pointer.rpartition("/")[0])
        assert message == MISSING_FIELD and isinstance(parent, dict), (
            f"pointer {pointer!r} ({message}) is not in the request body"
        )


def assert_problem(status: int, content_type: str, raw: bytes) -> dict[str, Any]:
    assert status < 500, raw[:500]
    assert content_type == PROBLEM, (status, content_type)
    problem: dict[str, Any] = orjson.loads(raw)
    assert problem["status"] == status
    assert problem["code"] in REFUSAL_CODES
    assert isinstance(problem["title"], str) and isinstance(problem["detail"], str)
    assert isinstance(problem["errors"], list)
    return problem


def assert_refusal(response: TestResponse, body: Any = _ABSENT) -> dict[str, Any]:
    problem = assert_problem(response.status_code, response.mimetype, response.get_data())
    if body is not _ABSENT and response.status_code in (400, 403, 413, 422):
        assert_names_what_was_sent(problem["errors"], body)
    return problem


# --- schemathesis, negative data -----------------------------------------------------------


@schema.parametrize()  # type: ignore[untyped-decorator]
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)
def test_negative_requests_from_the_document_are_refused_with_a_problem(
    case: Any, hostile: Hostile
) -> None:
    before = hostile.quick_input_offsets()
    response = case.call_and_validate(
        app=hostile.api.client.application,
        headers={"Authorization": f"Bearer {hostile.api.key}"},
        checks=[
            not_a_server_error,
            negative_data_rejection,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
    if response.status_code >= 400:
        assert hostile.quick_input_offsets() == before, "a refused request published records"
        media_type = response.headers.get("content-type", [""])[0].partition(";")[0]
        problem = assert_problem(response.status_code, media_type, response.content)
        if response.status_code in (400, 403, 413, 422) and isinstance(case.body, dict | list):
            assert_names_what_was_sent(problem["errors"], case.body)


def test_the_document_declares_no_links_so_there_is_nothing_stateful_to_chain() -> None:
    # When an operation starts answering ids another one takes, declare the
    # link and add schemathesis's stateful phase to this module.
    assert schema.as_state_machine().bundles == {}


# --- hypothesis: arbitrary JSON, and valid events with one field replaced ---------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
BODY_SETTINGS: Final = settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.parametrize("kind", FACTORIES)
@BODY_SETTINGS
@given(body=json_values | st.fixed_dictionaries({"events": json_values}))
def test_any_json_value_as_a_body_is_refused_with_pointers_into_it(
    hostile: Hostile, kind: str, body: Any
) -> None:
    before = hostile.quick_input_offsets()
    response = hostile.send(kind, orjson.dumps(body))

    assert response.status_code in (400, 413, 422), response.get_data(as_text=True)
    assert_refusal(response, body)
    assert hostile.quick_input_offsets() == before, "a refused request published records"


def _with_one_field_replaced(
    draw: st.DrawFn, event: dict[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The event with one member (at any depth) replaced by any JSON value."""
    paths: list[tuple[str, ...]] = []
    for name, value in event.items():
        paths.append((name,))
        if isinstance(value, dict):
            paths.extend((name, inner) for inner in value)
    path = draw(st.sampled_from(paths))
    replacement = draw(json_values)
    mutated = orjson.loads(orjson.dumps(event))
    target = mutated
    for name in path[:-1]:
        target = target[name]
    target[path[-1]] = replacement
    return mutated, path


@st.composite
def mutated_requests(draw: st.DrawFn, kind: str) -> tuple[Any, str]:
    """(body, pointer of the replaced member): alone, or in a batch of three."""
    factory = FACTORIES[kind]
    extra = {"location": {"country": "TH", "cell_id": "BKK-0001"}} if kind == "activations" else {}
    events = [factory(imsi=imsi("52003", seed), **extra) for seed in (1, 2, 3)]
    index = draw(st.integers(0, 2))
    events[index], path = _with_one_field_replaced(draw, events[index])
    pointer = "/" + "/".join(path)
    if draw(st.booleans()):
        return events[index], pointer
    return {"events": events}, f"/events/{index}{pointer}"


@pytest.mark.parametrize("kind", FACTORIES)
@BODY_SETTINGS
@given(data=st.data())
def test_a_valid_event_with_one_field_replaced_is_refused_naming_that_field(
    hostile: Hostile, kind: str, data: st.DataObject
) -> None:
    body, replaced = data.draw(mutated_requests(kind))
    before = hostile.quick_input_offsets()

    response = hostile.send(kind, orjson.dumps(body))

    if response.status_code == 202:
        # The replacement happened to be valid (an optional free-text field).
        return
    problem = assert_refusal(response, body)
    assert hostile.quick_input_offsets() == before, "a refused request published records"
    if response.status_code == 422:
        named = [error["pointer"] for error in problem["errors"]]
        assert any(
            pointer == replaced or pointer.startswith(replaced + "/") for pointer in named
        ), (replaced, named)


def test_a_member_named_like_marshmallows_own_key_is_named_exactly(hostile: Hostile) -> None:
    event = valid_activation(location={"country": "TH", "_schema": 1})
    event["_schema"] = 1

    response = hostile.send("activations", orjson.dumps({"events": [event]}))

    assert response.status_code == 422
    pointers = {error["pointer"] for error in response.get_json()["errors"]}
    assert pointers == {"/events/0/_schema", "/events/0/location/_schema"}


# --- extremes ----------------------------------------------------------------------------


@pytest.mark.usefixtures("nothing_published")
def test_a_body_over_the_size_limit_is_too_large(hostile: Hostile) -> None:
    limit = hostile.settings.api_max_body_bytes
    raw = orjson.dumps({"events": [valid_network_event()]}) + b" " * limit

    response = hostile.send("network_events", raw)

    assert response.status_code == 413
    assert assert_refusal(response)["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.usefixtures("nothing_published")
def test_a_chunked_body_over_the_size_limit_is_too_large_not_cut_short(hostile: Hostile) -> None:
    # Without Content-Length, as gunicorn passes a chunked upload: a valid
    # batch followed by whitespace must not be read up to the limit and
    # then accepted as if the rest had not been sent.
    limit = hostile.settings.api_max_body_bytes
    raw = orjson.dumps({"events": [valid_network_event()]}) + b" " * limit

    response = hostile.send_chunked("network_events", raw)

    assert response.status_code == 413
    assert assert_refusal(response)["code"] == "PAYLOAD_TOO_LARGE"


def test_a_chunked_body_of_exactly_the_size_limit_is_read_whole(hostile: Hostile) -> None:
    limit = hostile.settings.api_max_body_bytes
    event = valid_network_event(imsi=imsi("52003", 77))
    json = orjson.dumps(event)
    raw = json + b" " * (limit - len(json))

    response = hostile.send_chunked("network_events", raw)

    assert response.status_code == 202, response.get_data(as_text=True)


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[" * NESTING_LEVELS, id="arrays"),
        pytest.param(b'{"a":' * NESTING_LEVELS, id="objects"),
        pytest.param(
            b'{"events":' + b"[" * NESTING_LEVELS + b"]" * NESTING_LEVELS + b"}", id="events"
        ),
    ],
)
def test_deeply_nested_json_is_malformed_not_a_crash(hostile: Hostile, raw: bytes) -> None:
    response = hostile.send("activations", raw)

    assert response.status_code == 400
    assert assert_refusal(response)["code"] == "INVALID_ARGUMENT"


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    "content_type",
    [
        pytest.param("text/plain", id="text/plain"),
        pytest.param("multipart/form-data; boundary=x", id="multipart"),
        pytest.param("application/xml", id="xml"),
        pytest.param("application/json-patch+xml", id="json-like"),
        pytest.param(None, id="none"),
    ],
)
def test_a_wrong_content_type_is_malformed(hostile: Hostile, content_type: str | None) -> None:
    # DESIGN.md: 400 "means the body is not a JSON object of the right shape
    # (bad JSON, wrong content type)", so no 415.
    raw = orjson.dumps(valid_network_event())

    response = hostile.send("network_events", raw, content_type=content_type)

    assert response.status_code == 400
    assert assert_refusal(response)["errors"][0]["pointer"] == ""


@pytest.mark.usefixtures("nothing_published")
def test_a_real_multipart_upload_is_malformed(hostile: Hostile) -> None:
    event = orjson.dumps(valid_network_event())
    response = hostile.api.client.post(
        PATHS["network_events"],
        data={"events": (io.BytesIO(event), "events.json")},
        headers={"Authorization": f"Bearer {hostile.api.key}"},
        content_type="multipart/form-data",
    )

    assert response.status_code == 400
    assert_refusal(response)


@pytest.mark.usefixtures("nothing_published")
@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"imsi": "\xff"}', id="0xff in a string"),
        pytest.param(b'{"imsi": "\xc0\xaf"}', id="overlong slash"),
        pytest.param(b'{"imsi": "\xed\xa0\x80"}', id="encoded surrogate"),
        pytest.param(b'{"imsi": "52003\xe0\x80"}', id="truncated sequence"),
        pytest.param(b"\xff\xfe{\x00}\x00", id="utf-16 with a bom"),
    ],
)
def test_invalid_utf8_is_malformed(hostile: Hostile, raw: bytes) -> None:
    response = hostile.send("activations", raw)

    assert response.status_code == 400
    assert "UTF-8" in assert_refusal(response)["detail"]


def test_a_batch_of_1000_with_one_bad_event_names_it_and_publishes_nothing(
    hostile: Hostile,
) -> None:
    events = [valid_network_event(imsi=imsi("52003", seed)) for seed in range(1000)]
    events[737]["visited_plmn"] = "5"
    before = hostile.input_offsets()

    response = hostile.send("network_events", orjson.dumps({"events": events}))

    assert response.status_code == 422
    pointers = [
        error["pointer"] for error in assert_refusal(response, {"events": events})["errors"]
    ]
    assert pointers == ["/events/737/visited_plmn"]
    assert hostile.input_offsets() == before


def test_a_batch_of_1001_is_too_large_and_publishes_nothing(hostile: Hostile) -> None:
    events = [valid_network_event(imsi=imsi("52003", seed)) for seed in range(1001)]
    before = hostile.input_offsets()

    response = hostile.send("network_events", orjson.dumps({"events": events}))

    assert response.status_code == 413
    assert assert_refusal(response)["errors"] == [
        {"pointer": "/events", "message": "more than 1000 events"}
    ]
    assert hostile.input_offsets() == before
