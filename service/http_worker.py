"""The API's gunicorn worker: gevent's HTTP server (pywsgi) inside gunicorn's
gevent worker, with gunicorn's bounds on connections and headers kept.

gunicorn's plain `gevent` worker reads HTTP with gunicorn's own parser; with
gevent's server instead, the API spent 9 % less CPU per single-event request,
on average over alternating runs (bench/ANALYSIS.md). pywsgi alone waits for
ever for a keep-alive connection's next request and accepts a hundred header
lines of 64 KiB each, so `BoundedHandler` applies gunicorn's settings as
gunicorn's worker did:

- `keepalive`: a connection that sends no complete request line and headers
  within it is closed, so idle or slow clients cannot hold all of
  `worker_connections`. It is one deadline for the whole head, not a
  per-read idle time: a client trickling a byte a second gets no longer;
- `timeout`: the most a body read or an answer's write may stall;
- `limit_request_fields` and `limit_request_field_size`: more or longer
  header lines are refused with 400. (The request line is bounded by pywsgi:
  8,192 bytes, 414 beyond.)

And, as RFC 9112 section 6.3 asks, a request whose length is ambiguous is
refused with 400 and its connection closed, so nothing can be smuggled
behind it: Content-Length repeated or not one number, Content-Length with
Transfer-Encoding, Transfer-Encoding repeated, Host repeated.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, BinaryIO

import gevent
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

_END_OF_HEADERS = (b"\r\n", b"\n", b"")
# RFC 9110's token: a field name, with nothing around it.
_FIELD_NAME = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")


class BoundedHandler(PyWSGIHandler):  # type: ignore[misc]
    _head_deadline: gevent.Timeout | None = None

    def handle_one_request(self) -> Any:
        keepalive = self._config.keepalive
        # A socket error ends the connection quietly while the request line
        # is read, and is a 400 once the headers are being read.
        self._head_deadline = (
            gevent.Timeout.start_new(
                keepalive, TimeoutError(f"request head not complete within {keepalive} s")
            )
            if keepalive
            else None
        )
        try:
            return super().handle_one_request()
        finally:
            self._end_head_deadline()

    def read_requestline(self) -> str:
        self.socket.settimeout(self._config.keepalive or None)
        line: str = super().read_requestline()
        return line

    def read_request(self, raw_requestline: str) -> bool:
        parsed: bool = super().read_request(raw_requestline)
        self._end_head_deadline()
        # The headers are in: the body and the answer may take up to `timeout`.
        self.socket.settimeout(self._config.timeout or None)
        return parsed

    def _end_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.close()
            self._head_deadline = None

    def MessageClass(self, fp: BinaryIO, *args: Any) -> RequestHeaders:
        return bounded_headers(
            fp, self._config.limit_request_fields, self._config.limit_request_field_size
        )

    def log_request(self) -> None:
        # The app logs every request itself (service.request_log); gunicorn's
        # access log is off, so nothing is built for it.
        return None

    @property
    def _config(self) -> Any:
        # The worker hands its logger, which holds gunicorn's settings, to
        # the server that creates this handler.
        return self.server.log.cfg


def bounded_headers(fp: BinaryIO, max_fields: int, max_field_bytes: int) -> RequestHeaders:
    """The header fields up to the blank line, within gunicorn's limits.

    Split by hand: the standard library's email parser, which pywsgi uses, took
    ≈ 7 % of the API's CPU under single-event requests (bench/RESULTS.md).
    Stricter than it, as RFC 9112 asks of a server: a line that is not
    `token ":" value` (no colon, white space before it, an obsolete folded
    continuation) is refused. Headers with a `status` are refused by pywsgi
    with 400.
    """
    fields: list[tuple[str, str]] = []
    while True:
        line = fp.readline(max_field_bytes + 1)
        if len(line) > max_field_bytes:
            return RequestHeaders([], "header line too long")
        if line in _END_OF_HEADERS:
            ambiguity = _ambiguous_framing(fields)
            return RequestHeaders([], ambiguity) if ambiguity else RequestHeaders(fields)
        name, colon, value = line.partition(b":")
        if not colon or _FIELD_NAME.fullmatch(name) is None:
            return RequestHeaders([], "invalid header line")
        fields.append((name.decode("ascii"), value.strip(b" \t\r\n").decode("iso-8859-1")))
        if len(fields) > max_fields:
            return RequestHeaders([], "too many header fields")


def _ambiguous_framing(fields: list[tuple[str, str]]) -> str:
    """Why the request's length or target is ambiguous, "" when it is not."""
    counts: dict[str, int] = {}
    for key, _ in fields:
        lowered = key.lower()
        counts[lowered] = counts.get(lowered, 0) + 1
    for name in ("content-length", "transfer-encoding", "host"):
        if counts.get(name, 0) > 1:
            return f"repeated {name}"
    if counts.get("content-length") and counts.get("transfer-encoding"):
        return "content-length with transfer-encoding"
    length = next((value for key, value in fields if key.lower() == "content-length"), None)
    if length is not None and _DIGITS.fullmatch(length) is None:
        return "content-length is not one number"
    return ""


class RequestHeaders:
    """A request's header fields, with what pywsgi asks of its header message."""

    def __init__(self, fields: list[tuple[str, str]], status: str = "") -> None:
        self.fields = fields
        # Non-empty: why the headers are refused.
        self.status = status
        # pywsgi looks up several names per request: each field's name is
        # lowered once, here, and the first of repeated fields answers.
        self._first: dict[str, str] = {}
        for key, value in fields:
            self._first.setdefault(key.lower(), value)

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._first.get(name.lower(), default)

    getheader = get

    def __delitem__(self, name: str) -> None:
        wanted = name.lower()
        self.fields = [(key, value) for key, value in self.fields if key.lower() != wanted]
        self._first.pop(wanted, None)

    @property
    def typeheader(self) -> str | None:
        return self.get("content-type")

    @property
    def headers(self) -> Iterator[str]:
        for key, value in self.fields:
            yield f"{key}: {value}\r\n"


class ApiWorker(GeventPyWSGIWorker):  # type: ignore[misc]
    wsgi_handler = BoundedHandler
