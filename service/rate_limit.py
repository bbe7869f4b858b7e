"""Per-operator rate limits on the ingest endpoints: one token bucket per
operator, counted in events, not requests.

A bucket holds up to `burst` tokens and refills at `rate` tokens a second; a
request of n events spends n. One event is the unit because an event is what
costs (validation, a Kafka record, a worker's apply): a batch of 500 is 500
single posts' worth of work in one request.

A body is charged at least a token per 2 KiB (`BYTES_PER_TOKEN`), so padding
a few events to megabytes buys no more parsing than that many events would.

A batch larger than the burst would never fit, so admission asks only for
`min(n, burst)` tokens, i.e. a full bucket for such a batch, and then spends
all n, leaving the bucket in debt: the operator's next request waits until
the debt is paid back. Large batches are never starved and the long-run rate
still holds. A refused request spends nothing and is answered 429 with
`Retry-After`, the whole seconds until enough tokens are back.

Tokens are spent once the request is authenticated and its envelope counted,
before the events are validated, because validation is most of the work a
flood costs; a request then refused (422, 403, 503) has still used its tokens.

Buckets live in process memory. Under gunicorn each worker process has its
own, so the configured rate and burst are divided by the number of processes
(`SIMGUARD_API_PROCESSES`, set by `simguard api`): one API instance then
admits about the configured rate when an operator's connections are spread
over its processes (one keep-alive connection reaches one process, so about
1/N of it), and a deployment of R instances admits R times it.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final

from service.problems import RateLimited
from simguard.settings import ConfigError, Settings

# Set by `simguard api` (service.serve) to its gunicorn worker count.
PROCESSES_ENV: Final = "SIMGUARD_API_PROCESSES"
# Four times a typical event's JSON (400-600 bytes): well-formed batches are
# charged by their events, only padded ones by their size.
BYTES_PER_TOKEN: Final = 2048


@dataclass(frozen=True)
class RateLimitPolicy:
    """What one process admits per operator."""

    events_per_second: float
    burst_events: float

    @classmethod
    def from_settings(cls, settings: Settings, processes: int = 1) -> RateLimitPolicy | None:
        """This process's share of the configured limit; None when it is off."""
        rate = settings.api_rate_limit_per_second
        burst = settings.api_rate_limit_burst
        if not math.isfinite(rate) or rate < 0:
            raise ConfigError("api_rate_limit_per_second must be 0 (off) or positive")
        if burst < 0:
            raise ConfigError("api_rate_limit_burst must be 0 (one second's worth) or positive")
        if processes < 1:
            raise ConfigError(f"{PROCESSES_ENV} must be a positive number of processes")
        if rate == 0:
            return None
        # Without an explicit burst, one second's worth of events.
        burst_events = burst if burst > 0 else max(1, math.ceil(rate))
        return cls(
            events_per_second=rate / processes,
            # At least one event, so a single post always fits a full bucket.
            burst_events=max(1.0, burst_events / processes),
        )


def processes_from_environment(environ: Mapping[str, str] | None = None) -> int:
    """How many processes share this API instance's limit (1 outside gunicorn)."""
    value = (os.environ if environ is None else environ).get(PROCESSES_ENV, "1")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{PROCESSES_ENV} must be a whole number, got {value!r}") from None


def tokens_for(events: int, body_bytes: int) -> int:
    """What a request costs: an event a token, and never less than a token
    per BYTES_PER_TOKEN of body, so a few events padded to megabytes pay
    for the parsing and validating their size takes."""
    return max(events, math.ceil(body_bytes / BYTES_PER_TOKEN))


class _Bucket:
    __slots__ = ("tokens", "updated_at")

    def __init__(self, tokens: float, updated_at: float) -> None:
        self.tokens = tokens
        self.updated_at = updated_at


class RateLimiter:
    """Token buckets by operator; safe for concurrent requests
    (greenlets under gunicorn's gevent workers, or threads)."""

    def __init__(
        self, policy: RateLimitPolicy | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.policy = policy
        self._clock = clock
        # One entry per operator that has a key: bounded by the key table.
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimiter:
        return cls(RateLimitPolicy.from_settings(settings, processes_from_environment()))

    def admit(self, operator: str, events: int, body_bytes: int = 0) -> None:
        """Spend the request's tokens of `operator`'s bucket, or raise RateLimited."""
        tokens = tokens_for(events, body_bytes)
        wait_seconds = self.spend(operator, tokens)
        if wait_seconds > 0:
            retry_after = max(1, math.ceil(wait_seconds))
            raise RateLimited(
                f"Operator {operator} is over its rate limit; this request of {events} "
                f"event(s) ({tokens} token(s) by its size) was not accepted. Resend it after "
                f"{retry_after} s.",
                retry_after_seconds=retry_after,
            )

    def spend(self, operator: str, events: int) -> float:
        """0.0 when admitted (tokens spent), else the seconds until it would be."""
        policy = self.policy
        if policy is None:
            return 0.0
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(operator)
            if bucket is None:
                bucket = self._buckets[operator] = _Bucket(policy.burst_events, now)
            elapsed = max(0.0, now - bucket.updated_at)
            bucket.tokens = min(
                policy.burst_events, bucket.tokens + elapsed * policy.events_per_second
            )
            bucket.updated_at = now
            needed = min(float(events), policy.burst_events)
            if bucket.tokens >= needed:
                bucket.tokens -= events
                return 0.0
            return (needed - bucket.tokens) / policy.events_per_second
