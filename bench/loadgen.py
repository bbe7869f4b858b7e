"""A bounded HTTP/1.1 load generator for the API, run as its own process:

    python -m bench.loadgen --url URL --key-file F --bodies F --connections 32 \\
        --warmup 2 --duration 10 --max-requests 200000

Each connection sends pre-built POSTs (cycling through the bodies, one JSON
body per line of the bodies file) one after another over keep-alive, like an
operator's client with a connection pool. Requests completed within the
measured window (after the warm-up) are counted; the run stops by itself at
the end of the window or after `max-requests`, and writes one JSON object
(to `--result`, or stdout).
Loopback only: the URL must name 127.0.0.1 or localhost.
"""

from __future__ import annotations

import argparse
import selectors
import socket
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import orjson

# An answer that has not come back by then counts as an error, and the
# connection is opened anew.
REQUEST_TIMEOUT_SECONDS = 30.0


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    accepted_all: int = 0  # 2xx answers, warm-up and stragglers included


@dataclass(frozen=True)
class Plan:
    host: str
    port: int
    requests: list[bytes]
    connections: int
    warmup_seconds: float
    duration_seconds: float
    max_requests: int


class _Connection:
    """One keep-alive connection and the request it has in flight.

    Plain sockets and one selector rather than asyncio streams: the generator
    shares the API's two cores, and every microsecond it spends per request
    is taken from the server it measures.
    """

    def __init__(self, plan: Plan, index: int) -> None:
        self.plan = plan
        self.position = index
        self.sock: socket.socket | None = None
        self.pending = memoryview(b"")
        self.received = bytearray()
        self.started = 0.0
        self.deadline = 0.0

    def open(self) -> socket.socket:
        sock = socket.create_connection((self.plan.host, self.plan.port))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setblocking(False)
        self.sock = sock
        return sock

    def next_request(self) -> None:
        request = self.plan.requests[self.position % len(self.plan.requests)]
        self.position += self.plan.connections
        self.pending = memoryview(request)
        self.received.clear()
        self.started = time.monotonic()
        self.deadline = self.started + REQUEST_TIMEOUT_SECONDS

    def answer(self) -> tuple[int, bool] | None:
        """(status, keep the connection) once the whole answer is in."""
        head_end = self.received.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(self.received[:head_end]).lower()
        length = 0
        at = head.find(b"\r\ncontent-length:")
        if at >= 0:
            line_end = head.find(b"\r\n", at + 2)
            length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
        if len(self.received) < head_end + 4 + length:
            return None
        return int(head[9:12]), b"\r\nconnection: close" not in head


def run(plan: Plan) -> dict[str, object]:
    tally = Tally()
    start = time.monotonic()
    measure_from = start + plan.warmup_seconds
    stop_at = measure_from + plan.duration_seconds
    selector = selectors.DefaultSelector()
    live: list[_Connection] = []

    def begin(connection: _Connection) -> bool:
        """Send the connection's next request, opening it anew if needed."""
        if time.monotonic() >= stop_at or tally.sent >= plan.max_requests:
            return False
        sock = connection.sock
        if sock is None:
            try:
                sock = connection.open()
            except OSError as error:
                tally.errors[type(error).__name__] += 1
                return False
            selector.register(sock, selectors.EVENT_READ, connection)
        connection.next_request()
        tally.sent += 1
        # Most requests fit in the socket's buffer at once; only the rest of
        # a large one waits for the socket to become writable.
        try:
            sent = sock.send(connection.pending)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            # A connection the server closed between two requests: the next
            # round of `finish` opens a new one.
            drop(connection, type(error).__name__)
            connection.deadline = time.monotonic()
            return True
        connection.pending = connection.pending[sent:]
        if connection.pending:
            selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, connection)
        return True

    def drop(connection: _Connection, error: str | None) -> None:
        if error is not None and connection.started >= measure_from:
            tally.errors[error] += 1
        if connection.sock is not None:
            selector.unregister(connection.sock)
            connection.sock.close()
            connection.sock = None

    def finish(connection: _Connection) -> None:
        if not begin(connection):
            drop(connection, None)
            live.remove(connection)

    for index in range(plan.connections):
        connection = _Connection(plan, index)
        if begin(connection):
            live.append(connection)
    while live:
        now = time.monotonic()
        for connection in [c for c in live if c.deadline <= now]:
            # No socket: its request failed to send and was counted then.
            drop(connection, "TimeoutError" if connection.sock is not None else None)
            finish(connection)
        if not live:
            break
        timeout = max(min(c.deadline for c in live) - now, 0.0)
        for key, events in selector.select(timeout):
            connection = key.data
            sock = connection.sock
            assert sock is not None
            try:
                if events & selectors.EVENT_WRITE and connection.pending:
                    sent = sock.send(connection.pending)
                    connection.pending = connection.pending[sent:]
                    if not connection.pending:
                        selector.modify(sock, selectors.EVENT_READ, connection)
                if not events & selectors.EVENT_READ:
                    continue
                data = sock.recv(262144)
            except BlockingIOError:
                continue
            except OSError as error:
                drop(connection, type(error).__name__)
                finish(connection)
                continue
            if not data:
                drop(connection, "ConnectionError")
                finish(connection)
                continue
            connection.received += data
            answer = connection.answer()
            if answer is None:
                continue
            status, keep_alive = answer
            finished = time.monotonic()
            if 200 <= status < 300:
                tally.accepted_all += 1
            if measure_from <= connection.started and finished <= stop_at:
                tally.statuses[status] += 1
                tally.latencies.append(finished - connection.started)
            if not keep_alive:
                drop(connection, None)
            finish(connection)
    selector.close()
    # Stopped early by max-requests: the window was shorter than planned.
    measured = min(time.monotonic(), stop_at) - measure_from
    latencies = sorted(tally.latencies)

    def quantile(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "measured_seconds": max(measured, 1e-9),
        "statuses": {str(k): v for k, v in sorted(tally.statuses.items())},
        "errors": dict(tally.errors),
        "completed": len(latencies),
        "sent": tally.sent,
        "accepted_all": tally.accepted_all,
        "latency_ms": {"p50": quantile(0.50), "p99": quantile(0.99)},
    }


def build_requests(url: str, key: str, bodies: list[bytes]) -> tuple[str, int, list[bytes]]:
    parts = urlsplit(url)
    if parts.hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit("bench.loadgen sends to the loopback interface only")
    host, port = parts.hostname, parts.port or 80
    head = (
        f"POST {parts.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
    )
    requests = [f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body for body in bodies]
    return host, port, requests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen")
    parser.add_argument("--url", required=True)
    parser.add_argument("--key-file", type=Path, required=True)
    parser.add_argument("--bodies", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--max-requests", type=int, default=1_000_000)
    parser.add_argument("--result", type=Path, help="write the JSON result here (default stdout)")
    args = parser.parse_args(argv)
    bodies = [line for line in args.bodies.read_bytes().splitlines() if line.strip()]
    host, port, requests = build_requests(args.url, args.key_file.read_text().strip(), bodies)
    plan = Plan(
        host, port, requests, args.connections, args.warmup, args.duration, args.max_requests
    )
    result = orjson.dumps(run(plan))
    if args.result:
        args.result.write_bytes(result)
    else:
        sys.stdout.write(result.decode() + "\n")


if __name__ == "__main__":
    main()
