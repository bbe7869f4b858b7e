"""The `x-correlator` header (CAMARA convention): taken from the request or
generated, kept in `g.correlator`, echoed on every answer and logged."""

from __future__ import annotations

import re
import uuid
from typing import Final

from flask import Response, g, request

from service.problems import FieldError, MalformedRequest

HEADER: Final = "x-correlator"
# CAMARA's pattern. Anything else is refused rather than logged: the value
# lands verbatim in log lines and problem bodies.
PATTERN: Final = r"^[a-zA-Z0-9-_:;.\/<>{}]{0,256}$"
_VALID = re.compile(PATTERN)


def take_correlator() -> None:
    """before_request: adopt the caller's correlator or make one."""
    g.correlator, acceptable = correlator_for(request.headers.get(HEADER, ""))
    if not acceptable:
        raise refused_correlator()


def correlator_for(presented: str) -> tuple[str, bool]:
    """The request's correlator, and whether the presented one (if any) was
    acceptable: the caller's own when it was, a new one otherwise."""
    if not presented:
        return str(uuid.uuid4()), True
    if _VALID.fullmatch(presented) is not None:
        return presented, True
    return str(uuid.uuid4()), False


def refused_correlator() -> MalformedRequest:
    return MalformedRequest(
        f"The {HEADER} header must match {PATTERN}.",
        [FieldError("", f"{HEADER} header does not match {PATTERN}")],
    )


def echo_correlator(response: Response) -> Response:
    """after_request: every answer, errors included, carries the correlator."""
    correlator = g.get("correlator")
    if correlator:
        response.headers[HEADER] = correlator
    return response
