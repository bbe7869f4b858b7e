"""RFC 9457 problem details: the one shape every error answer takes.

Handlers raise a `Problem` subclass; `register_problem_handlers` installs one
handler per family: our own problems, werkzeug's HTTP errors (routing,
methods, body size) and anything unexpected (a 500 that names no internals).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from flask import Flask, Response, g
from werkzeug.exceptions import HTTPException

PROBLEM_MEDIA_TYPE = "application/problem+json"
# Problem types are identifiers (RFC 9457 3.1.1); a URN claims no web address.
_TYPE_BASE = "urn:simguard:problem:"

log = logging.getLogger("simguard.api")


@dataclass(frozen=True)
class FieldError:
    """One bad member of the request body, as a JSON pointer (RFC 6901)."""

    pointer: str
    message: str


# How many field errors a problem document lists; `errors_omitted` counts the rest.
MAX_LISTED_ERRORS = 100


class Problem(Exception):
    """An answer that is an error; subclasses fix status, title and code.

    `reason` labels simguard_events_rejected_total, so it stays one of a
    handful of values.
    """

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal server error"
    code: ClassVar[str] = "INTERNAL"
    reason: ClassVar[str] = "internal"
    slug: ClassVar[str] = "internal"

    def __init__(
        self,
        detail: str,
        errors: Iterable[FieldError] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        # A body of a thousand events with hundreds of bad members each must
        # not become a problem document (and a process) a hundred times its
        # size: the first errors are listed, the rest only counted.
        remaining = iter(errors)
        self.errors = tuple(itertools.islice(remaining, MAX_LISTED_ERRORS))
        self.errors_omitted = sum(1 for _ in remaining)
        self.headers = dict(headers or {})


class MalformedRequest(Problem):
    """The body is not a JSON object of the right shape (bad JSON, wrong type)."""

    status = 400
    title = "Malformed request"
    code = "INVALID_ARGUMENT"
    reason = "malformed"
    slug = "malformed-request"


class InvalidEvents(Problem):
    """Well-formed events that fail validation."""

    status = 422
    title = "Invalid events"
    code = "INVALID_ARGUMENT"
    reason = "invalid"
    slug = "invalid-argument"


class PayloadTooLarge(Problem):
    status = 413
    title = "Payload too large"
    code = "PAYLOAD_TOO_LARGE"
    reason = "too_large"
    slug = "payload-too-large"


class Unauthenticated(Problem):
    status = 401
    title = "Unauthenticated"
    code = "UNAUTHENTICATED"
    reason = "unauthenticated"
    slug = "unauthenticated"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="simguard"'})


class PermissionDenied(Problem):
    status = 403
    title = "Permission denied"
    code = "PERMISSION_DENIED"
    reason = "permission_denied"
    slug = "permission-denied"


class NotFound(Problem):
    status = 404
    title = "Not found"
    code = "NOT_FOUND"
    reason = "not_found"
    slug = "not-found"


class Conflict(Problem):
    """The request was made against a state that is no longer current."""

    status = 409
    title = "Conflict"
    code = "CONFLICT"
    reason = "conflict"
    slug = "conflict"


class Unavailable(Problem):
    """Kafka did not acknowledge in time; the whole request may be resent."""

    status = 503
    title = "Service unavailable"
    code = "UNAVAILABLE"
    reason = "unavailable"
    slug = "unavailable"

    def __init__(
        self, detail: str, retry_after_seconds: int, errors: Sequence[FieldError] = ()
    ) -> None:
        super().__init__(detail, errors, headers={"Retry-After": str(retry_after_seconds)})


class RateLimited(Problem):
    """The operator is over its events-per-second limit; resend after Retry-After."""

    status = 429
    title = "Too many requests"
    code = "RESOURCE_EXHAUSTED"
    reason = "rate_limited"
    slug = "resource-exhausted"

    def __init__(self, detail: str, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)})


# Werkzeug's own errors (routing, method, body size) mapped onto our codes.
_HTTP_CODES: Mapping[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
}


@dataclass(frozen=True)
class Answer:
    """A response as WSGI sends it. The ingest routes write it straight to
    WSGI (service.ingest_front); Flask's handlers wrap it in a Response."""

    status: int
    media_type: str
    body: bytes
    headers: Mapping[str, str] = field(default_factory=dict)

    def to_response(self) -> Response:
        response = Response(self.body, status=self.status, mimetype=self.media_type)
        for name, value in self.headers.items():
            response.headers[name] = value
        return response


def problem_answer(
    *,
    status: int,
    title: str,
    detail: str,
    code: str,
    slug: str,
    correlator: str | None,
    errors: Sequence[FieldError] = (),
    errors_omitted: int = 0,
    headers: Mapping[str, str] | None = None,
) -> Answer:
    body: dict[str, Any] = {
        "type": _TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "errors": [{"pointer": e.pointer, "message": e.message} for e in errors],
    }
    if errors_omitted:
        body["errors_omitted"] = errors_omitted
    if correlator:
        # Names this occurrence; the same id is in the log line and the header.
        body["instance"] = f"urn:simguard:request:{correlator}"
    return Answer(status, PROBLEM_MEDIA_TYPE, orjson.dumps(body), dict(headers or {}))


def answer_problem(problem: Problem, correlator: str | None) -> Answer:
    return problem_answer(
        status=problem.status,
        title=problem.title,
        detail=problem.detail,
        code=problem.code,
        slug=problem.slug,
        correlator=correlator,
        errors=problem.errors,
        errors_omitted=problem.errors_omitted,
        headers=problem.headers,
    )


def answer_http_exception(error: HTTPException, correlator: str | None) -> Answer:
    status = error.code or 500
    headers: dict[str, str] = {}
    if status == 405 and error.valid_methods:  # type: ignore[attr-defined]
        headers["Allow"] = ", ".join(sorted(error.valid_methods))  # type: ignore[attr-defined]
    return problem_answer(
        status=status,
        title=error.name,
        # werkzeug's descriptions are fixed texts, never the request's content.
        detail=error.description or error.name,
        code=_HTTP_CODES.get(status, "INTERNAL" if status >= 500 else "INVALID_ARGUMENT"),
        slug=error.name.lower().replace(" ", "-"),
        correlator=correlator,
        headers=headers,
    )


def answer_unexpected(correlator: str | None) -> Answer:
    """The 500 for an exception being handled; its traceback goes to the log."""
    # The client gets none of it, since exception texts can carry
    # configuration or request data.
    log.exception("unhandled error", extra={"fields": {"correlator": correlator}})
    return problem_answer(
        status=500,
        title="Internal server error",
        detail="The request could not be handled; quote the x-correlator when reporting it.",
        code="INTERNAL",
        slug="internal",
        correlator=correlator,
    )


def _render_problem(problem: Problem) -> Response:
    return answer_problem(problem, g.get("correlator")).to_response()


def _render_http_exception(error: HTTPException) -> Response:
    return answer_http_exception(error, g.get("correlator")).to_response()


def _render_unexpected(error: Exception) -> Response:
    del error  # logged from the exception being handled
    return answer_unexpected(g.get("correlator")).to_response()


def register_problem_handlers(app: Flask) -> None:
    app.register_error_handler(Problem, _render_problem)
    app.register_error_handler(HTTPException, _render_http_exception)
    app.register_error_handler(Exception, _render_unexpected)
