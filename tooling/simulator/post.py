"""Posting a scenario to simguard's HTTP API, as operators would, on loopback only.

Order: all registrations, then all activations, then all network events, then
the usage reports, each
kind finished (every batch answered 202) before the next begins. UNREGISTERED
judges an activation at max(activated_at, received) + grace on the
registrations the worker has applied by then, so registrations that were
accepted before their activations are on their way to the worker first; a
worker that still lags behind its grace raises the flag and clears it when the
registration arrives, so the register ends the same.

Batches: one operator's events (a key sends for its own PLMN ids only), whole
SIMs at a time, each SIM's events in event-time order. Concurrent requests may
then overtake each other, but never reorder one SIM's events, which all go to
that SIM's partition in the order of their request.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlsplit

import orjson

from tooling.simulator.population import Scenario

POST_ORDER: Final = ("registrations", "activations", "network_events", "usage")
PATHS: Final = {
    "activations": "/v1/activations",
    "registrations": "/v1/registrations",
    "network_events": "/v1/network-events",
    "usage": "/v1/usage",
}
# The API's own cap on a batch (api_max_batch_events' default).
MAX_BATCH_EVENTS: Final = 1000
# 503 means "Kafka did not acknowledge in time, resend the whole request" and
# 429 "this operator is over its rate, resend after Retry-After"; processing is
# idempotent per event_id, so resending is always safe.
RESEND_STATUSES: Final = frozenset({429, 503})
MAX_ATTEMPTS: Final = 5
MAX_RETRY_AFTER_SECONDS: Final = 10.0

Progress = Callable[[str, int], None]


class PostError(RuntimeError):
    """A batch was refused: the API's status and problem body, and what got through."""

    def __init__(self, kind: str, status: int, problem: Any, report: PostReport) -> None:
        super().__init__(f"POST {PATHS[kind]} answered {status}: {problem}")
        self.kind = kind
        self.status = status
        self.problem = problem
        self.report = report


@dataclass
class KindReport:
    sent: int = 0
    accepted: int = 0
    refused: int = 0
    requests: int = 0
    retries: int = 0
    seconds: float = 0.0


@dataclass
class PostReport:
    kinds: dict[str, KindReport] = field(default_factory=dict)

    @property
    def sent(self) -> int:
        return sum(k.sent for k in self.kinds.values())

    @property
    def accepted(self) -> int:
        return sum(k.accepted for k in self.kinds.values())

    @property
    def refused(self) -> int:
        return sum(k.refused for k in self.kinds.values())

    def summary(self) -> str:
        lines = []
        for kind, k in self.kinds.items():
            rate = k.accepted / k.seconds if k.seconds else 0.0
            lines.append(
                f"{kind:<15} sent {k.sent:>7}  accepted {k.accepted:>7}  refused {k.refused:>5}  "
                f"requests {k.requests:>5}  retries {k.retries:>3}  {k.seconds:6.1f} s  "
                f"{rate:8.0f} events/s"
            )
        return "\n".join(lines)


def require_loopback(api_url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of `api_url`, which must point at this machine.

    The simulator's identity numbers pass their check digits and look real:
    they must never reach a register that anyone relies on.
    """
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {api_url!r}")
    host = parts.hostname
    if host != "localhost":
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the simulator posts to loopback addresses only, not {host!r}")
    return parts.scheme, host, parts.port or (443 if parts.scheme == "https" else 80)


def batches(events: Iterable[dict[str, Any]], batch_size: int) -> list[list[dict[str, Any]]]:
    """Per operator, whole SIMs per batch, at most `batch_size` events each."""
    by_operator: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for event in events:
        by_operator.setdefault(event["operator"], {}).setdefault(event["imsi"], []).append(event)
    packed: list[list[dict[str, Any]]] = []
    for sims in by_operator.values():
        current: list[dict[str, Any]] = []
        for imsi, own in sims.items():
            if len(own) > batch_size:
                raise ValueError(f"SIM {imsi} has {len(own)} events, more than a batch")
            if len(current) + len(own) > batch_size:
                packed.append(current)
                current = []
            current.extend(own)
        if current:
            packed.append(current)
    return packed


class _Connections:
    """One keep-alive connection per posting thread."""

    def __init__(self, scheme: str, host: str, port: int, timeout_seconds: float) -> None:
        self._factory = (
            http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
        )
        self._host, self._port, self._timeout = host, port, timeout_seconds
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def get(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._factory(self._host, self._port, timeout=self._timeout)
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def reset(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()


def post(
    scenario: Scenario,
    api_url: str,
    keys: Mapping[str, str],
    batch_size: int = 500,
    concurrency: int = 4,
    *,
    timeout_seconds: float = 30.0,
    progress: Progress | None = None,
) -> PostReport:
    """POST every event of `scenario`; `keys` maps each operator PLMN id to its API key.

    Raises PostError at the first batch answered other than 202 (after
    resending on 429, 503 and on a dropped connection), ValueError before sending
    anything when the URL is not loopback or an operator has no key.
    """
    scheme, host, port = require_loopback(api_url)
    if not 1 <= batch_size <= MAX_BATCH_EVENTS:
        raise ValueError(f"batch_size must be 1 to {MAX_BATCH_EVENTS}")
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    missing = sorted(
        {e["operator"] for events in scenario.events.values() for e in events} - set(keys)
    )
    if missing:
        raise ValueError(f"no API key for operator(s) {', '.join(missing)}")
    report = PostReport()
    connections = _Connections(scheme, host, port, timeout_seconds)
    try:
        for kind in POST_ORDER:
            report.kinds[kind] = KindReport()
            _post_kind(
                kind,
                scenario.events[kind],
                keys,
                batch_size,
                concurrency,
                connections,
                report,
                progress,
            )
    finally:
        connections.close()
    return report


def _post_kind(
    kind: str,
    events: list[dict[str, Any]],
    keys: Mapping[str, str],
    batch_size: int,
    concurrency: int,
    connections: _Connections,
    report: PostReport,
    progress: Progress | None,
) -> None:
    started = time.monotonic()
    counts = report.kinds[kind]
    lock = threading.Lock()

    def send(batch: list[dict[str, Any]]) -> None:
        status, body, retries = _send(connections, PATHS[kind], batch, keys[batch[0]["operator"]])
        with lock:
            counts.requests += 1 + retries
            counts.retries += retries
            counts.sent += len(batch)
            if status != 202:
                counts.refused += len(batch)
                raise PostError(kind, status, body, report)
            accepted = body.get("accepted") if isinstance(body, dict) else None
            if accepted != len(batch):
                counts.refused += len(batch)
                raise PostError(kind, status, f"accepted {accepted} of {len(batch)}", report)
            counts.accepted += len(batch)
        if progress is not None:
            progress(kind, len(batch))

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix=f"post-{kind}")
    try:
        futures: list[Future[None]] = [pool.submit(send, b) for b in batches(events, batch_size)]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for future in done:
            error = future.exception()
            if error is not None:
                pool.shutdown(wait=True, cancel_futures=True)
                raise error
    finally:
        pool.shutdown(wait=True)
        counts.seconds = time.monotonic() - started


def _send(
    connections: _Connections, path: str, batch: list[dict[str, Any]], key: str
) -> tuple[int, Any, int]:
    """(status, decoded body, retries) of one batch, resent on 429, 503 or a dropped connection."""
    body = orjson.dumps({"events": batch})
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for attempt in range(MAX_ATTEMPTS):
        last_attempt = attempt == MAX_ATTEMPTS - 1
        try:
            connection = connections.get()
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            # A keep-alive connection the server closed while idle, or a reset.
            connections.reset()
            if last_attempt:
                raise
            time.sleep(0.2 * (attempt + 1))
            continue
        if response.status in RESEND_STATUSES and not last_attempt:
            time.sleep(_retry_after(response.getheader("Retry-After")))
            continue
        return response.status, _decode(raw), attempt
    raise AssertionError("unreachable: the last attempt returns or raises")


def _retry_after(value: str | None) -> float:
    try:
        return min(max(float(value or 1), 0.1), MAX_RETRY_AFTER_SECONDS)
    except ValueError:
        return 1.0


def _decode(raw: bytes) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw.decode("utf-8", "replace")
