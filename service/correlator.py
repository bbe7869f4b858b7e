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
    presented = request.headers.get(HEADER, "")
    g.correlator = correlator_for(presented)
    require_valid(presented)


def correlator_for(presented: str) -> str:
    """The caller's correlator when it is a valid one, else a new one."""
    if presented and _VALID.fullmatch(presented) is not None:
        return presented
    return str(uuid.uuid4())


def require_valid(presented: str) -> None:
    if presented and _VALID.fullmatch(presented) is None:
        raise MalformedRequest(
            f"The {HEADER} header must match {PATTERN}.",
            [FieldError("", f"{HEADER} header does not match {PATTERN}")],
        )


def echo_correlator(response: Response) -> Response:
    """after_request: every answer, errors included, carries the correlator."""
    correlator = g.get("correlator")
    if correlator:
        response.headers[HEADER] = correlator
    return response
