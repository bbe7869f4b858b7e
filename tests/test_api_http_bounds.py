"""The API's HTTP server keeps gunicorn's bounds (service/http_worker.py):
idle and slow connections are closed after `keepalive` seconds, and header
lines beyond gunicorn's limits are refused. Spoken to over raw sockets, since
an HTTP client library would not send what these tests send."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from test_api_gunicorn import Server, running_api, server

from service import gunicorn_conf
from simguard.broker import KafkaNode

__all__ = ["server"]  # the fixture, shared with test_api_gunicorn

KEEPALIVE_SECONDS = gunicorn_conf.keepalive
# gunicorn's defaults, which the README states.
MAX_FIELDS = 100
MAX_FIELD_BYTES = 8190
MAX_REQUEST_LINE = 8192
# gunicorn's `timeout`, shortened for one server of this module.
SHORT_TIMEOUT_SECONDS = 2


@pytest.fixture(scope="module")
def short_timeout_server(
    kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    # A long keepalive, so that only the timeout can end a stalled body.
    extra_env = {"GUNICORN_CMD_ARGS": f"--timeout {SHORT_TIMEOUT_SECONDS} --keep-alive 600"}
    with running_api(kafka_broker, tmp_path_factory.mktemp("short-timeout"), extra_env) as api:
        yield api


def connect(server: Server) -> socket.socket:
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    return socket.create_connection((address.hostname, address.port), timeout=10)


def answer_of(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := connection.recv(65536):
        received += chunk
    return received


def one_answer(connection: socket.socket) -> bytes:
    """One whole answer (head and Content-Length body) off a kept-alive connection."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {received!r}"
        received += chunk
    head, body = received.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")[1:]
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        chunk = connection.recv(65536)
        assert chunk, f"closed after {received!r}"
        body += chunk
    assert len(body) == length, "more than one answer"
    return head + b"\r\n\r\n" + body


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def health_request(*headers: bytes) -> bytes:
    return (
        b"GET /healthz HTTP/1.1\r\nHost: api\r\n" + b"".join(headers) + b"Connection: close\r\n\r\n"
    )


def seconds_until_closed(connection: socket.socket) -> float:
    """How long the server keeps a connection it was sent nothing more on."""
    started = time.monotonic()
    connection.settimeout(KEEPALIVE_SECONDS * 3)
    try:
        while connection.recv(65536):
            pass
    except TimeoutError:
        pytest.fail(f"still open after {KEEPALIVE_SECONDS * 3} s")
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed_after_the_keepalive_time(
    server: Server,
) -> None:
    with connect(server) as connection:
        assert seconds_until_closed(connection) >= KEEPALIVE_SECONDS - 1


def test_an_idle_keepalive_connection_is_closed_after_its_last_answer(server: Server) -> None:
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
        first = one_answer(connection)

        assert status_of(first) == 200
        assert seconds_until_closed(connection) >= KEEPALIVE_SECONDS - 1


def test_headers_that_do_not_finish_within_the_keepalive_time_are_dropped(
    server: Server,
) -> None:
    with connect(server) as connection:
        connection.sendall(b"POST /v1/activations HTTP/1.1\r\nHost: api\r\n")

        assert seconds_until_closed(connection) >= KEEPALIVE_SECONDS - 1


def health_status(server: Server, *headers: bytes) -> int:
    """The status of GET /healthz sent with these extra header lines."""
    with connect(server) as connection:
        connection.sendall(health_request(*headers))
        return status_of(answer_of(connection))


def fields(count: int) -> list[bytes]:
    return [b"X-Field-%d: %d\r\n" % (n, n) for n in range(count)]


def header_line(size: int) -> bytes:
    """One header line of `size` bytes, its CRLF included."""
    name = b"X-Long: "
    return name + b"a" * (size - len(name) - 2) + b"\r\n"


def test_the_limit_of_header_fields_is_accepted(server: Server) -> None:
    # Host and Connection are two of them.
    assert health_status(server, *fields(MAX_FIELDS - 2)) == 200


def test_one_header_field_over_the_limit_is_refused(server: Server) -> None:
    assert health_status(server, *fields(MAX_FIELDS - 1)) == 400


def test_a_header_line_of_the_limit_is_accepted(server: Server) -> None:
    assert health_status(server, header_line(MAX_FIELD_BYTES)) == 200


def test_a_header_line_over_the_limit_is_refused(server: Server) -> None:
    assert health_status(server, header_line(MAX_FIELD_BYTES + 1)) == 400


@pytest.mark.parametrize(
    "line",
    [
        pytest.param(b"X-No-Colon\r\n", id="no colon"),
        pytest.param(b"X-Field : value\r\n", id="space before the colon"),
        pytest.param(b"X-Field: one\r\n  folded\r\n", id="obsolete line folding"),
        pytest.param(b"X Field: value\r\n", id="space in the name"),
    ],
)
def test_a_header_line_that_is_not_a_name_colon_value_is_refused(
    server: Server, line: bytes
) -> None:
    # RFC 9112 section 5: a server rejects these rather than guess.
    assert health_status(server, line) == 400


def test_header_values_reach_the_app_without_surrounding_space(server: Server) -> None:
    correlator = "5c4c1c5e-6f0a-4b57-9d4e-0f6a2a8b7c11"
    with connect(server) as connection:
        connection.sendall(health_request(f"X-Correlator: \t{correlator} \r\n".encode()))
        answer = answer_of(connection)

    assert f"x-correlator: {correlator}\r\n".encode() in answer.lower()


def test_a_request_line_over_the_limit_is_refused_as_too_long(server: Server) -> None:
    path = b"/healthz?" + b"a" * MAX_REQUEST_LINE
    with connect(server) as connection:
        connection.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: api\r\n\r\n")

        assert status_of(answer_of(connection)) == 414


def test_requests_on_one_keepalive_connection_are_all_answered(server: Server) -> None:
    with connect(server) as connection:
        for _ in range(3):
            connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n")
            assert status_of(one_answer(connection)) == 200


def test_a_body_that_stalls_past_the_timeout_is_a_bad_request(
    short_timeout_server: Server,
) -> None:
    with connect(short_timeout_server) as connection:
        connection.sendall(
            b"POST /v1/activations HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            b"Authorization: Bearer " + short_timeout_server.key.encode() + b"\r\n"
            b"Content-Length: 100\r\n\r\n{"
        )
        connection.settimeout(SHORT_TIMEOUT_SECONDS * 10)

        try:
            answer = answer_of(connection)
        except TimeoutError:
            pytest.fail(f"a stalled body held the connection for {SHORT_TIMEOUT_SECONDS * 10} s")

    assert status_of(answer) == 400
    assert b"Content-Type: application/problem+json" in answer


def test_a_head_trickled_a_byte_at_a_time_is_cut_off_at_the_keepalive_deadline(
    server: Server,
) -> None:
    # Each byte comes well within the keepalive time of the one before; the
    # head as a whole may still take no longer than the keepalive time.
    started = time.monotonic()
    with connect(server) as connection:
        connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: api\r\nX-Slow: ")
        closed = False
        while not closed and time.monotonic() - started < KEEPALIVE_SECONDS * 4:
            time.sleep(1)
            try:
                connection.sendall(b"a")
                connection.settimeout(0.01)
                closed = connection.recv(65536) == b"" or closed
            except TimeoutError:
                continue
            except OSError:
                closed = True
    assert closed, f"still reading the head after {KEEPALIVE_SECONDS * 4} s"
    assert time.monotonic() - started < KEEPALIVE_SECONDS + 3


SMUGGLED = b"GET /healthz HTTP/1.1\r\nHost: api\r\n\r\n"


@pytest.mark.parametrize(
    "framing",
    [
        pytest.param(b"Content-Length: 0\r\nContent-Length: %d\r\n", id="two content-lengths"),
        pytest.param(b"Content-Length: 0, %d\r\n", id="a content-length list"),
        pytest.param(
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n", id="length and chunked"
        ),
        pytest.param(
            b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\nX-Length: %d\r\n",
            id="two transfer-encodings",
        ),
        pytest.param(b"Host: other\r\nContent-Length: %d\r\n", id="two hosts"),
    ],
)
def test_a_request_of_ambiguous_length_is_refused_and_nothing_behind_it_is_answered(
    server: Server, framing: bytes
) -> None:
    # RFC 9112 section 6.3: a second request hidden in the first one's body
    # (or the other way round) must not be answered.
    head = b"POST /v1/activations HTTP/1.1\r\nHost: api\r\n" + framing % len(SMUGGLED)
    with connect(server) as connection:
        connection.sendall(head + b"\r\n" + SMUGGLED)
        answer = answer_of(connection)

    assert status_of(answer) == 400
    assert answer.count(b"HTTP/1.1 ") == 1, answer
