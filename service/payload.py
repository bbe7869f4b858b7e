"""From request bytes to validated events, or a problem naming every bad field.

The checks run from cheapest to dearest and each refuses the whole request:
content type, size and JSON (400/413), the envelope's shape (400/413), then
every event against its marshmallow schema (422), through the fast path of
schemas/fast_events.py when it accepts. Nothing is published unless all of
them pass.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from marshmallow import Schema, ValidationError, fields, validate
from marshmallow.exceptions import SCHEMA
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.wrappers import Request

from schemas.events import EventKind
from schemas.fast_events import FastEventLoader
from service.problems import FieldError, InvalidEvents, MalformedRequest, PayloadTooLarge

_JSON_MEDIA_TYPE = "application/json"
_UTF8 = frozenset({"utf-8", "utf8"})
# marshmallow's message for a member the schema does not name.
_UNKNOWN_MEMBER = Schema().error_messages["unknown"]
# Six digits or more in a member's name: possibly an identity number, never
# echoed back (nor logged with the problem).
_DIGIT_RUN = re.compile(r"[0-9]{6}")
_UNKNOWN_NUMERIC_MEMBER = "unknown member, named with a number (the name is not repeated)"


def read_json(request: Request, max_body_bytes: int) -> tuple[Any, int]:
    """The body parsed as JSON and its size in bytes, or 400 (not JSON) / 413 (too big)."""
    mimetype = request.mimetype
    if mimetype != _JSON_MEDIA_TYPE and not (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    ):
        raise MalformedRequest(
            "Send the events as JSON with 'Content-Type: application/json'.",
            [FieldError("", f"unsupported content type {mimetype or '(none)'!r}")],
        )
    charset = request.mimetype_params.get("charset")
    if charset is not None and charset.lower() not in _UTF8:
        raise MalformedRequest(
            "JSON bodies must be UTF-8.", [FieldError("", f"unsupported charset {charset!r}")]
        )
    too_large = PayloadTooLarge(
        f"The body exceeds {max_body_bytes} bytes; send fewer events per request.",
        [FieldError("", f"body larger than {max_body_bytes} bytes")],
    )
    if request.content_length is not None and request.content_length > max_body_bytes:
        raise too_large
    # A body without Content-Length (chunked) is read up to the limit and no
    # further, and werkzeug stops there without a word: reading one byte more
    # than allowed is what tells an oversized body from one that fits.
    request.max_content_length = max_body_bytes + 1
    try:
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raise too_large from None
    if len(raw) > max_body_bytes:
        raise too_large
    try:
        return orjson.loads(raw), len(raw)
    except orjson.JSONDecodeError as error:
        raise _not_json(raw, error) from None


def _not_json(raw: bytes, error: orjson.JSONDecodeError) -> MalformedRequest:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as bad_bytes:
        return MalformedRequest(
            "The body is not valid UTF-8.",
            [FieldError("", f"invalid UTF-8 at byte {bad_bytes.start}")],
        )
    # orjson's message names the position, never the text found there.
    return MalformedRequest(
        "The body is not valid JSON.",
        [FieldError("", f"{error.msg} at line {error.lineno} column {error.colno}")],
    )


def is_batch(body: Any, max_events: int) -> bool:
    """True for `{"events": [...]}`, False for one event; 400/413 otherwise."""
    if not isinstance(body, dict):
        raise MalformedRequest(
            'The body must be a JSON object: one event, or {"events": [...]}.',
            [FieldError("", "must be a JSON object")],
        )
    if "events" not in body:
        return False
    events = body["events"]
    if not isinstance(events, list):
        raise MalformedRequest(
            "'events' must be an array of event objects.",
            [FieldError("/events", "must be an array")],
        )
    if len(events) > max_events:
        raise PayloadTooLarge(
            f"A batch holds at most {max_events} events; this one has {len(events)}.",
            [FieldError("/events", f"more than {max_events} events")],
        )
    not_objects = [
        FieldError(f"/events/{index}", "must be a JSON object")
        for index, event in enumerate(events)
        if not isinstance(event, dict)
    ]
    if not_objects:
        raise MalformedRequest("Every element of 'events' must be a JSON object.", not_objects)
    return True


@functools.cache
def batch_schema(kind: EventKind, max_events: int) -> type[Schema]:
    """`{"events": [<event>, ...]}` for one kind: validates batches and
    documents them in the OpenAPI document."""
    name = "".join(part.capitalize() for part in kind.name.split("_"))
    return Schema.from_dict(
        {
            "events": fields.List(
                fields.Nested(kind.request_schema),
                required=True,
                validate=validate.Length(min=1, max=max_events),
                metadata={"description": f"1 to {max_events} events."},
            )
        },
        name=f"{name}BatchSchema",
    )


@dataclass(frozen=True)
class EventLoader:
    """One kind's request validation: the fast path first, the schemas for
    anything it does not accept (their verdict and messages are the contract)."""

    # None for a kind the fast path has no equivalent of (usage counters:
    # one per SIM a day, not the hot path).
    fast: FastEventLoader | None
    single_schema: Schema
    batch_schema: Schema
    max_events: int

    def load(self, body: dict[str, Any], batch: bool) -> list[dict[str, Any]]:
        """Every event loaded, or 422 with one pointer per bad field."""
        if batch:
            events = self.fast.load_batch(body, self.max_events) if self.fast else None
            if events is not None:
                return events
            return load_events(self.batch_schema, body, batch)
        event = self.fast.load(body) if self.fast else None
        if event is not None:
            return [event]
        return load_events(self.single_schema, body, batch)


def load_events(schema: Schema, body: dict[str, Any], batch: bool) -> list[dict[str, Any]]:
    """Every event loaded by `schema`, or 422 with one pointer per bad field."""
    try:
        loaded = schema.load(body)
    except ValidationError as error:
        raise InvalidEvents(
            "Some events failed validation; nothing was accepted.",
            field_errors(error.messages, body=body),
        ) from None
    events: list[dict[str, Any]] = loaded["events"] if batch else [loaded]
    return events


def field_errors(messages: Any, pointer: str = "", body: Any = None) -> Iterator[FieldError]:
    """marshmallow's nested messages as JSON pointers (RFC 6901).

    `{"events": {3: {"location": {"country": [msg]}}}}` becomes
    `/events/3/location/country`; schema-level messages point at their object.
    `body` is the part of the request the messages are about.
    """
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if key == SCHEMA:
                yield from _object_errors(value, pointer, body)
            elif _names_a_number(key) and value == [_UNKNOWN_MEMBER]:
                # The name itself may be an identity number sent as a key:
                # point at the object instead of repeating it.
                yield FieldError(pointer, _UNKNOWN_NUMERIC_MEMBER)
            else:
                child = f"{pointer}/{_escape(str(key))}"
                yield from field_errors(value, child, _member(body, key))
    elif isinstance(messages, list | tuple):
        for message in messages:
            yield from field_errors(message, pointer, body)
    else:
        yield FieldError(pointer, str(messages))


def _names_a_number(key: Any) -> bool:
    return isinstance(key, str) and _DIGIT_RUN.search(key) is not None


def _object_errors(messages: Any, pointer: str, body: Any) -> Iterator[FieldError]:
    """Messages about the object at `pointer` itself.

    marshmallow files an unknown member that is literally named "_schema"
    under the same key as the object's own messages; its "Unknown field."
    belongs to that member, not to the object.
    """
    has_schema_member = isinstance(body, Mapping) and SCHEMA in body
    for error in field_errors(messages, pointer, body):
        if has_schema_member and error.message == _UNKNOWN_MEMBER:
            yield FieldError(f"{pointer}/{_escape(SCHEMA)}", error.message)
        else:
            yield error


def _member(body: Any, key: Any) -> Any:
    """`body[key]` when it exists (a member, or an array index), else None."""
    if isinstance(body, Mapping):
        return body.get(str(key))
    if isinstance(body, list) and isinstance(key, int) and 0 <= key < len(body):
        return body[key]
    return None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def load_object(request: Request, max_body_bytes: int, schema: Schema, what: str) -> dict[str, Any]:
    """A body that is one JSON object, loaded by `schema`; 400, 413 or 422 otherwise."""
    body, _ = read_json(request, max_body_bytes)
    if not isinstance(body, dict):
        raise MalformedRequest(
            f"Send the {what} as a JSON object.", [FieldError("", "not a JSON object")]
        )
    try:
        loaded: dict[str, Any] = schema.load(body)
    except ValidationError as error:
        raise InvalidEvents(
            f"The {what} failed validation; nothing was accepted.",
            field_errors(error.messages, body=body),
        ) from None
    return loaded
