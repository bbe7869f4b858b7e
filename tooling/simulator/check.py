"""Reading the regulator topic as a regulator would, and scoring it against the truth.

The latest record per IMSI (highest `version`) is the SIM's current case;
reading with read_committed and without a consumer group (assign and seek)
sees exactly what a regulator sees and moves nobody's offsets. The worker may
still be at work when the check starts (deadlines fire on its clock), so the
check keeps reading until the register matches the truth and has stayed
unchanged for `settle_seconds`, or until `timeout` runs out, and reports the
last state it saw either way.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Final

import orjson
from kafka import KafkaConsumer, TopicPartition

from simguard.kafka_clients import manual_commit_consumer
from simguard.settings import Settings
from tooling.simulator.truth import Score, Truth, score

POLL_TIMEOUT_MS: Final = 200


@dataclass(frozen=True)
class CheckReport:
    score: Score
    records_read: int
    seconds: float
    # False when `timeout` ran out before the register matched the truth.
    settled: bool

    @property
    def perfect(self) -> bool:
        return self.score.perfect

    def table(self) -> str:
        state = "settled" if self.settled else "NOT settled (timed out)"
        return (
            f"{self.score.table()}\n"
            f"{self.records_read} case records read in {self.seconds:.1f} s, {state}"
        )

    def __str__(self) -> str:
        return self.table()


class RegisterReader:
    """Follows the regulator topic from its beginning, keeping each SIM's latest case."""

    def __init__(self, settings: Settings, partitions_timeout: float = 30.0) -> None:
        self.topic = settings.topic_flagged
        self.latest: dict[str, dict[str, Any]] = {}
        self.records_read = 0
        self._consumer: KafkaConsumer = manual_commit_consumer(settings, group_id=None)
        self._partitions = self._wait_for_partitions(partitions_timeout)
        self._consumer.assign(self._partitions)
        self._consumer.seek_to_beginning(*self._partitions)

    def _wait_for_partitions(self, timeout: float) -> list[TopicPartition]:
        deadline = time.monotonic() + timeout
        while True:
            found = self._consumer.partitions_for_topic(self.topic)
            if found:
                return [TopicPartition(self.topic, p) for p in sorted(found)]
            if time.monotonic() >= deadline:
                raise RuntimeError(f"regulator topic {self.topic} not found")
            time.sleep(0.2)

    def poll(self) -> int:
        """Read what has arrived; returns how many records that was."""
        count = 0
        for messages in self._consumer.poll(timeout_ms=POLL_TIMEOUT_MS).values():
            for message in messages:
                count += 1
                if not message.value:
                    continue  # a tombstone: nothing to say about the SIM
                record = orjson.loads(message.value)
                held = self.latest.get(record["imsi"])
                if held is None or record["version"] >= held["version"]:
                    self.latest[record["imsi"]] = record
        self.records_read += count
        return count

    def caught_up(self) -> bool:
        """Every partition read up to its last stable offset."""
        ends = self._consumer.end_offsets(self._partitions)
        return all(self._consumer.position(tp) >= ends[tp] for tp in self._partitions)

    def flagged(self) -> dict[str, frozenset[str]]:
        return {
            imsi: frozenset(reason["code"] for reason in record["reasons"])
            for imsi, record in self.latest.items()
            if record["status"] == "flagged"
        }

    def close(self) -> None:
        self._consumer.close()


def check(
    settings: Settings,
    truth: Truth,
    timeout: float = 120.0,
    *,
    population: Collection[str] | None = None,
    settle_seconds: float = 3.0,
) -> CheckReport:
    """Score the regulator's register against `truth` (see the module's docstring).

    `population`: the IMSIs the simulation sent; flags on other SIMs are
    counted apart instead of as false positives.
    """
    started = time.monotonic()
    deadline = started + timeout
    reader = RegisterReader(settings)
    try:
        current = score(truth, {}, population)
        quiet_since = time.monotonic()
        while True:
            if reader.poll():
                quiet_since = time.monotonic()
            if reader.caught_up():
                current = score(truth, reader.flagged(), population)
                if current.perfect and time.monotonic() - quiet_since >= settle_seconds:
                    return CheckReport(
                        current, reader.records_read, time.monotonic() - started, True
                    )
            if time.monotonic() >= deadline:
                return CheckReport(current, reader.records_read, time.monotonic() - started, False)
    finally:
        reader.close()
