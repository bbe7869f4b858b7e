"""Bearer API keys, checked against the store and cached briefly per process.

The cache is what keeps a store round trip off every request at thousands of
requests per second. Its price: a revoked key keeps working in a process that
has it cached for up to `ttl_seconds` (30 s by default). Entries are keyed by
the SHA-256 of the presented key, so the cache never holds a key itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from flask import g

from service.problems import FieldError, PermissionDenied, Unauthenticated
from simguard.api_keys import ApiKey, authenticate
from simguard.store import Store

DEFAULT_TTL_SECONDS: Final = 30.0
# Bounds memory when someone sprays random keys at the API.
DEFAULT_MAX_ENTRIES: Final = 10_000


class Authenticator:
    def __init__(
        self,
        store: Callable[[], Store],
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        max_entries: int = DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._store = store
        self._ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._cache: dict[str, tuple[float, ApiKey | None]] = {}
        self._lock = threading.Lock()

    def require(self, authorization: str | None) -> ApiKey:
        """The active key named by an `Authorization: Bearer ...` header, or 401."""
        presented = _bearer_token(authorization)
        if presented is None:
            raise Unauthenticated("Send an operator API key as 'Authorization: Bearer <key>'.")
        api_key = self._lookup(presented)
        if api_key is None:
            raise Unauthenticated("The API key is unknown, revoked or expired.")
        return api_key

    def _lookup(self, presented: str) -> ApiKey | None:
        digest = hashlib.sha256(presented.encode()).hexdigest()
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            # An expiry is known in advance: a cached key stops at it exactly.
            key = cached[1]
            if key is not None and key.expires_at is not None and key.expired(datetime.now(UTC)):
                return None
            return key
        # Unknown keys are cached too: a client retrying with a bad key must
        # not turn every request into a store query.
        api_key = authenticate(self._store(), presented)
        with self._lock:
            if len(self._cache) >= self._max_entries:
                self._evict(now)
            self._cache[digest] = (now + self._ttl_seconds, api_key)
        return api_key

    def _evict(self, now: float) -> None:
        expired = [digest for digest, (until, _) in self._cache.items() if until <= now]
        for digest in expired:
            del self._cache[digest]
        if len(self._cache) >= self._max_entries:
            self._cache.clear()


def _bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return token


def require_regulator(
    authenticator: Authenticator, authorization: str | None, detail: str
) -> ApiKey:
    """The request's key if it is a regulator's; 401 without a key, 403 for an operator's."""
    api_key = authenticator.require(authorization)
    g.operator = api_key.operator
    if not api_key.is_regulator:
        raise PermissionDenied(detail, [FieldError("", "a regulator's API key is required")])
    return api_key
