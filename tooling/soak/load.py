"""The soak's load: the simulator's chunks, posted on a schedule."""

from __future__ import annotations

import contextlib
import http.client
import multiprocessing
import queue
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from datetime import UTC, datetime
from typing import Any

import orjson

from simguard.settings import Rules
from tooling.soak.plan import (
    CHUNK_SIMS,
    MAX_CATCH_UP_SECONDS,
    PATHS,
    SENDER_THREADS,
    SoakPlan,
    Tally,
)
from tooling.soak.stack import Stack

Batch = tuple[str, str, bytes, int]  # path, operator, body, events


def _generate(sims: int, seed: int, rules: Rules) -> dict[str, Any]:
    """One chunk of the simulator's population (run in a helper process)."""
    from tooling.simulator.population import generate

    scenario = generate(sims, seed=seed, now=datetime.now(UTC), rules=rules)
    return {"events": scenario.events, "border_cells": scenario.border_cells}


class Load:
    """Chunks generated ahead in a helper process; sender threads post their
    batches on a schedule of `rate_per_second`, resending on 503."""

    def __init__(self, stack: Stack, plan: SoakPlan) -> None:
        from simguard.store import open_store

        self.stack = stack
        self.plan = plan
        self.tally = Tally()
        self.stopping = threading.Event()
        self._batches: queue.Queue[Batch] = queue.Queue(maxsize=200)
        self._keys: dict[str, str] = {}
        self._store = open_store(stack.settings.database_url)
        # spawn, not fork: this process already runs Kafka clients' threads.
        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn")
        )
        self._schedule_lock = threading.Lock()
        self._next_send_at = 0.0
        self._threads: list[threading.Thread] = []

    def first_chunk(self) -> dict[str, Any]:
        return self._pool.submit(_generate, CHUNK_SIMS, 1, self.stack.settings.rules).result()

    def start(self, first: dict[str, Any]) -> None:
        self._next_send_at = time.monotonic()
        feeder = threading.Thread(target=self._feed, args=(first,), name="soak-feed", daemon=True)
        self._threads = [feeder] + [
            threading.Thread(target=self._send_loop, name=f"soak-send-{i}", daemon=True)
            for i in range(SENDER_THREADS)
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        if self.stopping.is_set():
            return
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._store.close()

    def _feed(self, first: dict[str, Any]) -> None:
        try:
            self._feed_chunks(first)
        except Exception as error:  # the run reports it and fails
            with self.tally.lock:
                self.tally.failures.append(f"generating events: {type(error).__name__}: {error}")

    def _feed_chunks(self, first: dict[str, Any]) -> None:
        from tooling.simulator.post import batches

        rules = self.stack.settings.rules
        seed = 2
        upcoming: Future[dict[str, Any]] = self._pool.submit(_generate, CHUNK_SIMS, seed, rules)
        chunk = first
        while not self.stopping.is_set():
            for kind, path in PATHS.items():
                for batch in batches(chunk["events"][kind], self.plan.batch_events):
                    operator = batch[0]["operator"]
                    self._key_for(operator)
                    item = (path, operator, orjson.dumps({"events": batch}), len(batch))
                    while not self.stopping.is_set():
                        with contextlib.suppress(queue.Full):
                            self._batches.put(item, timeout=0.5)
                            break
            chunk = upcoming.result()
            seed += 1
            upcoming = self._pool.submit(_generate, CHUNK_SIMS, seed, rules)

    def _key_for(self, operator: str) -> str:
        from simguard.api_keys import issue_key

        with self.tally.lock:
            if operator not in self._keys:
                self._keys[operator] = issue_key(self._store, operator)[1]
            return self._keys[operator]

    def _send_loop(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.stack.api_port, timeout=60)
        try:
            while not self.stopping.is_set():
                try:
                    path, operator, body, events = self._batches.get(timeout=0.5)
                except queue.Empty:
                    continue
                with self._schedule_lock:
                    now = time.monotonic()
                    send_at = max(self._next_send_at, now - MAX_CATCH_UP_SECONDS)
                    self._next_send_at = send_at + events / self.plan.rate_per_second
                time.sleep(max(send_at - now, 0.0))
                connection = self._post(connection, path, self._key_for(operator), body, events)
        finally:
            connection.close()

    def _post(
        self,
        connection: http.client.HTTPConnection,
        path: str,
        key: str,
        body: bytes,
        events: int,
    ) -> http.client.HTTPConnection:
        """Post until 202 (an operator resends on 503 or a dropped connection);
        a batch still unanswered when the soak stops counts as sent only."""
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with self.tally.lock:
            self.tally.sent += events
        while True:
            try:
                connection.request("POST", path, body=body, headers=headers)
                response = connection.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException):
                connection.close()
                connection = http.client.HTTPConnection(
                    "127.0.0.1", self.stack.api_port, timeout=60
                )
                with self.tally.lock:
                    self.tally.requests += 1
                    self.tally.connection_errors += 1
                if self.stopping.wait(0.5):
                    return connection
                continue
            with self.tally.lock:
                self.tally.requests += 1
                if response.status == 202:
                    ids = orjson.loads(raw)["event_ids"]
                    self.tally.acked_ids.update(ids)
                    self.tally.acked += len(ids)
                    return connection
                if response.status != 503:
                    self.tally.failures.append(f"{path} {response.status}: {raw[:300]!r}")
                    return connection
                self.tally.refused_503 += 1
            retry_after = float(response.getheader("Retry-After") or 1)
            if self.stopping.wait(min(retry_after, 5.0)):
                return connection
