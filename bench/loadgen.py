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
import asyncio
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


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """(status, keep the connection) after reading one whole response."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    keep_alive = True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        lowered = name.strip().lower()
        if lowered == b"content-length":
            length = int(value.strip())
        elif lowered == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
    if length:
        await reader.readexactly(length)
    return status, keep_alive


async def _connection(plan: Plan, index: int, tally: Tally, window: tuple[float, float]) -> None:
    measure_from, stop_at = window
    position = index
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < stop_at and tally.sent < plan.max_requests:
        if writer is None:
            reader, writer = await asyncio.open_connection(plan.host, plan.port)
        assert reader is not None
        request = plan.requests[position % len(plan.requests)]
        position += plan.connections
        tally.sent += 1
        started = time.monotonic()
        try:
            writer.write(request)
            status, keep_alive = await asyncio.wait_for(
                _read_response(reader), REQUEST_TIMEOUT_SECONDS
            )
        except (OSError, ConnectionError, TimeoutError, asyncio.IncompleteReadError) as error:
            if started >= measure_from:
                tally.errors[type(error).__name__] += 1
            writer.close()
            reader = writer = None
            continue
        finished = time.monotonic()
        if 200 <= status < 300:
            tally.accepted_all += 1
        if measure_from <= started and finished <= stop_at:
            tally.statuses[status] += 1
            tally.latencies.append(finished - started)
        if not keep_alive:
            writer.close()
            reader = writer = None
    if writer is not None:
        writer.close()


async def run(plan: Plan) -> dict[str, object]:
    tally = Tally()
    start = time.monotonic()
    window = (start + plan.warmup_seconds, start + plan.warmup_seconds + plan.duration_seconds)
    await asyncio.gather(
        *(_connection(plan, index, tally, window) for index in range(plan.connections))
    )
    # Stopped early by max-requests: the window was shorter than planned.
    measured = min(time.monotonic(), window[1]) - window[0]
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
    result = orjson.dumps(asyncio.run(run(plan)))
    if args.result:
        args.result.write_bytes(result)
    else:
        sys.stdout.write(result.decode() + "\n")


if __name__ == "__main__":
    main()
