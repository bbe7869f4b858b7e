"""What one app instance holds: settings and its per-process connections.

Connections are opened on first use, so a gunicorn worker opens its own after
the fork; nothing here touches the network when the app is created.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field

from flask import current_app

from service.auth import Authenticator
from service.publisher import KafkaPublisher
from simguard.settings import Settings
from simguard.store import Store, open_store

EXTENSION_KEY = "simguard"


class LazyStore:
    """The registry store, opened once per process on first use."""

    def __init__(self, database_url: str) -> None:
        self._database_url = database_url
        self._store: Store | None = None
        self._owner_pid: int | None = None
        self._lock = threading.Lock()

    def __call__(self) -> Store:
        store = self._store
        if store is not None and self._owner_pid == os.getpid():
            return store
        with self._lock:
            if self._store is None or self._owner_pid != os.getpid():
                self._store = open_store(self._database_url)
                self._owner_pid = os.getpid()
            return self._store

    def close(self) -> None:
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            store.close()


@dataclass
class ServiceContext:
    settings: Settings
    store: LazyStore
    publisher: KafkaPublisher
    authenticator: Authenticator
    spec_cache: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings) -> ServiceContext:
        store = LazyStore(settings.database_url)
        return cls(
            settings=settings,
            store=store,
            publisher=KafkaPublisher(settings),
            authenticator=Authenticator(store, ttl_seconds=settings.api_key_cache_seconds),
        )

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Release the producer and the store (tests; gunicorn just exits)."""
        self.publisher.close(timeout_seconds)
        self.store.close()


def service_context() -> ServiceContext:
    context: ServiceContext = current_app.extensions[EXTENSION_KEY]
    return context
