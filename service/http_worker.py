"""The API's gunicorn worker: gevent's HTTP server (pywsgi) inside gunicorn's
gevent worker, with gunicorn's bounds on connections and headers kept.

gunicorn's plain `gevent` worker reads HTTP with gunicorn's own parser; with
gevent's server instead, the API spent 961 instead of 1,507 µs of CPU per
single-event request on the same cores (bench/RESULTS.md). pywsgi alone waits
for ever for a keep-alive connection's next request and accepts a hundred
header lines of 64 KiB each, so `BoundedHandler` applies gunicorn's settings
as gunicorn's worker did:

- `keepalive`: a connection that sends no complete request line and headers
  within it is closed, so idle or slow clients cannot hold all of
  `worker_connections`;
- `timeout`: the most a body read or an answer's write may stall;
- `limit_request_fields` and `limit_request_field_size`: more or longer
  header lines are refused with 400. (The request line is bounded by pywsgi:
  8,192 bytes, 414 beyond.)
"""

from __future__ import annotations

from email.parser import Parser
from typing import Any, BinaryIO

from gevent import pywsgi
from gunicorn.workers.ggevent import GeventPyWSGIWorker, PyWSGIHandler

_END_OF_HEADERS = (b"\r\n", b"\n", b"")


class BoundedHandler(PyWSGIHandler):  # type: ignore[misc]
    def read_requestline(self) -> str:
        self.socket.settimeout(self._config.keepalive or None)
        line: str = super().read_requestline()
        return line

    def read_request(self, raw_requestline: str) -> bool:
        parsed: bool = super().read_request(raw_requestline)
        # The headers are in: the body and the answer may take up to `timeout`.
        self.socket.settimeout(self._config.timeout or None)
        return parsed

    def MessageClass(self, fp: BinaryIO, *args: Any) -> Any:
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


def bounded_headers(fp: BinaryIO, max_fields: int, max_field_bytes: int) -> Any:
    """http.client.parse_headers with gunicorn's limits instead of its own.

    A header message with a `status` is refused by pywsgi with 400.
    """
    lines: list[bytes] = []
    while True:
        line = fp.readline(max_field_bytes + 1)
        if len(line) > max_field_bytes:
            return _refused("header line too long")
        if line in _END_OF_HEADERS:
            break
        lines.append(line)
        if len(lines) > max_fields:
            return _refused("too many header fields")
    return Parser(_class=pywsgi.OldMessage).parsestr(b"".join(lines).decode("iso-8859-1"))


def _refused(reason: str) -> Any:
    message = pywsgi.OldMessage()
    message.status = reason
    return message


class ApiWorker(GeventPyWSGIWorker):  # type: ignore[misc]
    wsgi_handler = BoundedHandler
