"""Applies a batch of input records to the store in one transaction.

For each record: decode and validate (poison goes to the dead-letter outbox),
check the idempotency ledger (a resend is skipped; the same event_id with other
content is dead-lettered), apply it to the SIM's state through the pure rules,
and when the SIM's reasons change, add its next case record to the outbox.
Due deadlines (UNREGISTERED, reasons that age out) are handled the same way.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson
from marshmallow import ValidationError

from schemas import attestation, operator_signature
from schemas.dead_letter import (
    BAD_OPERATOR_SIGNATURE,
    EVENT_ID_CONFLICT,
    INVALID_EVENT,
    INVALID_RECHECK,
    UNPARSEABLE,
    UNSIGNED_RECORD,
    WRONG_PARTITION,
)
from schemas.events import EVENT_KINDS
from schemas.fast_events import FAST_SCHEMAS, FastEventLoader
from schemas.recheck import RecheckSchema
from simguard.partitioning import partition_for_key
from simguard.settings import Settings
from simguard.store import Tx
from simguard.store.in_lists import in_chunks
from simguard.timefmt import from_millis, from_text, to_text, utc_now
from workers import dead_letter
from workers.outbox import OutboxWriter
from workers.rules import registration as reg_rules
from workers.sim_effects import Arrival, SimEffects
from workers.state import SimState


class InputRecord(Protocol):
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: int
    # Kafka's: 0 CreateTime (the producer's claim), 1 LogAppendTime (the broker's).
    timestamp_type: int
    headers: list[tuple[str, bytes]] | None


LOG_APPEND_TIME = 1


class PoisonRecord(Exception):
    """The record cannot be applied; it goes to the dead-letter topic."""

    def __init__(self, error: str, detail: str) -> None:
        super().__init__(f"{error}: {detail}")
        self.error = error
        self.detail = detail


# A record with its event as loaded, or the reason it cannot be applied.
Decoded = tuple[InputRecord, dict[str, Any] | None, "PoisonRecord | None"]


@dataclass
class BatchOutcome:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    raised: Counter[str] = field(default_factory=Counter)
    cleared: Counter[str] = field(default_factory=Counter)
    outbox_rows: int = 0


class BatchProcessor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = settings.rules
        # Schemas built once: constructing one costs more than loading an event.
        # Partitions per input topic, as the broker has them (the loop sets
        # them at start); settings.topic_partitions until then.
        self.partition_counts: dict[str, int] = {}
        # "The future" of a record produced straight to Kafka is measured from
        # its broker timestamp, not from when a worker gets to it.
        self._judged_at = utc_now()
        clock = self._judging_clock
        self._schema_by_topic = {
            settings.topic_activations: EVENT_KINDS["activations"].wire_schema(clock=clock),
            settings.topic_registrations: EVENT_KINDS["registrations"].wire_schema(clock=clock),
            settings.topic_network_events: EVENT_KINDS["network_events"].wire_schema(clock=clock),
        }
        self._recheck_schema = RecheckSchema()
        # Records produced straight to Kafka (not signed by the API) are
        # checked by the same fast path as the API's, then by the schema only
        # when that is not sure (none for registrations, whose wire form it lacks).
        self._fast_by_topic = {
            topic: FastEventLoader(type(schema), clock=clock)
            for topic, schema in self._schema_by_topic.items()
            if type(schema) in FAST_SCHEMAS
        }
        self._time_field_by_topic = {
            settings.topic_activations: EVENT_KINDS["activations"].time_field,
            settings.topic_registrations: EVENT_KINDS["registrations"].time_field,
            settings.topic_network_events: EVENT_KINDS["network_events"].time_field,
        }

    def _judging_clock(self) -> datetime:
        return self._judged_at

    # --- entry points ---------------------------------------------------------------
    def decode(self, records: Sequence[InputRecord], now: datetime) -> list[Decoded]:
        """Parse and check a batch: pure, so the loop runs it before taking the
        store's write lock (another worker process can write meanwhile). `now`
        is the batch's clock, the arrival of records without a timestamp."""
        decoded: list[Decoded] = []
        for record in records:
            try:
                decoded.append((record, self._decode(record, now), None))
            except PoisonRecord as poison:
                decoded.append((record, None, poison))
        return decoded

    def apply_records(self, tx: Tx, decoded: Sequence[Decoded], now: datetime) -> BatchOutcome:
        outcome = BatchOutcome()
        outbox = OutboxWriter()
        effects = SimEffects(tx, self.settings, outbox, now)
        records = [record for record, _, _ in decoded]
        effects.preload(
            _keys_of(records),
            registering=_keys_of(
                [r for r in records if r.topic == self.settings.topic_registrations]
            ),
        )
        # Generators: only a store that takes named locks runs through them.
        effects.lock_ahead(
            registrations=_events_of(decoded, self.settings.topic_registrations),
            activations=_events_of(decoded, self.settings.topic_activations),
            holder_rechecks=(
                str(e["imsi"])
                for e in _events_of(decoded, self.settings.topic_rechecks)
                if e.get("check") == "holder" and e.get("imsi")
            ),
        )
        ledger = _Ledger(tx, now)
        ledger.preload(
            str(event["event_id"]) for _, event, _ in decoded if event and "event_id" in event
        )

        for record, event, decode_error in decoded:
            problem = decode_error
            if problem is None and event is not None:
                try:
                    self._apply_one(record, event, ledger, effects)
                except PoisonRecord as apply_error:
                    problem = apply_error
                else:
                    result = "duplicate" if ledger.last_was_duplicate else "applied"
                    outcome.outcomes[(record.topic, result)] += 1
                    continue
            assert problem is not None
            outbox.add(
                record.partition,
                self.settings.topic_dead_letter,
                _key_text(record.key),
                dead_letter.record_value(record, problem.error, problem.detail, now),
            )
            outcome.outcomes[(record.topic, "dead_lettered")] += 1
            outcome.dead_letters[(record.topic, problem.error)] += 1

        ledger.write()
        effects.finish(outcome)
        outcome.outbox_rows = len(outbox)
        outbox.write(tx)
        return outcome

    def apply_due(self, tx: Tx, shards: Iterable[int], now: datetime) -> BatchOutcome:
        """Deadlines of the owned shards that are due on the worker's clock."""
        outcome = BatchOutcome()
        shard_list = sorted(shards)
        if not shard_list:
            return outcome
        placeholders = ",".join("?" for _ in shard_list)
        due = tx.fetchall(
            f"SELECT imsi, kind, ref, shard FROM deadlines WHERE shard IN ({placeholders}) "
            "AND due_at <= ? ORDER BY due_at LIMIT 5000",
            (*shard_list, to_text(now)),
        )
        if not due:
            return outcome
        outbox = OutboxWriter()
        effects = SimEffects(tx, self.settings, outbox, now)
        effects.preload(row[0] for row in due)
        for imsi, kind, ref, shard in due:
            tx.execute(
                "DELETE FROM deadlines WHERE imsi = ? AND kind = ? AND ref = ?", (imsi, kind, ref)
            )
            effects.on_deadline(imsi, int(shard), kind, ref)
        effects.finish(outcome)
        outcome.outbox_rows = len(outbox)
        outbox.write(tx)
        return outcome

    # --- one record -----------------------------------------------------------------
    def _decode(self, record: InputRecord, now: datetime) -> dict[str, Any]:
        if record.value is None:
            raise PoisonRecord(UNPARSEABLE, "record has no value")
        self._check_partition(record)
        try:
            payload = orjson.loads(record.value)
        except orjson.JSONDecodeError as exc:
            raise PoisonRecord(UNPARSEABLE, f"not JSON: {exc}") from exc
        if not isinstance(payload, dict):
            raise PoisonRecord(UNPARSEABLE, "value is not a JSON object")
        if record.topic == self.settings.topic_rechecks:
            return self._recheck(record, payload)
        received = self._received(record, now)
        event = self._attested_event(record, payload)
        if event is None:
            event = self._operator_signed_event(record, payload, received)
        key = _key_text(record.key)
        if key is not None and key != event["imsi"]:
            raise PoisonRecord(INVALID_EVENT, "record key is not the event's IMSI")
        event["_content_hash"] = hashlib.sha256(
            orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
        event["_arrival"] = self._arrival(record, event, received)
        return event

    def _check_partition(self, record: InputRecord) -> None:
        """A SIM's records meet in the partition murmur2 gives its key (the
        worker owning it is the only one writing that SIM); one elsewhere,
        e.g. from a producer hashing with CRC32, is never applied."""
        partitions = self.partition_counts.get(record.topic, self.settings.topic_partitions)
        if record.key is None:
            raise PoisonRecord(WRONG_PARTITION, "record has no key (the IMSI)")
        expected = partition_for_key(record.key, partitions)
        if record.partition != expected:
            raise PoisonRecord(
                WRONG_PARTITION,
                f"record is on partition {record.partition}; its key maps to partition "
                f"{expected} of {partitions} (Kafka's murmur2 partitioner)",
            )

    def _recheck(self, record: InputRecord, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            recheck: dict[str, Any] = self._recheck_schema.load(payload)
        except ValidationError as exc:
            raise PoisonRecord(INVALID_RECHECK, _describe(exc.messages)) from exc
        if _key_text(record.key) != recheck["imsi"]:
            raise PoisonRecord(INVALID_RECHECK, "record key is not the recheck's IMSI")
        return recheck

    def _received(self, record: InputRecord, now: datetime) -> datetime:
        """When the broker appended the record (input topics are LogAppendTime,
        checked at start); a producer's own timestamp is never believed."""
        if record.timestamp_type == LOG_APPEND_TIME and record.timestamp and record.timestamp > 0:
            return from_millis(record.timestamp)
        return now

    def _arrival(self, record: InputRecord, event: dict[str, Any], received: datetime) -> Arrival:
        at = event[self._time_field_by_topic[record.topic]]
        deadline = None
        if record.topic == self.settings.topic_activations:
            deadline = to_text(reg_rules.unregistered_deadline(at, received, self.rules))
        return Arrival(to_text(received), to_text(at), deadline)

    def _attested_event(
        self, record: InputRecord, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The event as loaded, when the API's signature shows it validated it."""
        signature = _header(record, attestation.HEADER)
        if signature is None or record.value is None:
            return None
        if not attestation.verify(self.settings.attestation_secret, record.value, signature):
            return None
        time_field = self._time_field_by_topic[record.topic]
        try:
            return {**payload, time_field: from_text(payload[time_field])}
        except (KeyError, TypeError, ValueError):
            return None

    def _operator_signed_event(
        self, record: InputRecord, payload: dict[str, Any], received: datetime
    ) -> dict[str, Any]:
        """A record produced straight to Kafka: signed by the operator it names
        and validated in full (times judged against the broker's); the schema
        holds the IMSI to that operator's PLMN id, as the API holds an API key
        to its operators."""
        signature = _header(record, operator_signature.HEADER)
        if signature is None:
            raise PoisonRecord(
                UNSIGNED_RECORD,
                "record carries neither the API's attestation nor an operator signature "
                f"({operator_signature.HEADER})",
            )
        plmn = payload.get("operator")
        if not isinstance(plmn, str):
            raise PoisonRecord(INVALID_EVENT, "operator: a PLMN id string is required")
        if not operator_signature.verify(
            self.settings.operator_signing_secret,
            plmn,
            record.key,
            record.value or b"",
            signature,
        ):
            raise PoisonRecord(
                BAD_OPERATOR_SIGNATURE,
                "the operator signature does not verify under the key of the operator "
                "the event names",
            )
        self._judged_at = received
        event = None
        if record.topic in self._fast_by_topic:
            event = self._fast_by_topic[record.topic].load(payload)
        if event is None:
            try:
                event = self._schema_by_topic[record.topic].load(payload)
            except ValidationError as exc:
                raise PoisonRecord(INVALID_EVENT, _describe(exc.messages)) from exc
        return event

    def _apply_one(
        self, record: InputRecord, event: dict[str, Any], ledger: _Ledger, effects: SimEffects
    ) -> None:
        ledger.last_was_duplicate = False
        if record.topic == self.settings.topic_rechecks:
            effects.on_recheck(event, record.partition)
            return
        event_id = str(event["event_id"])
        seen = ledger.seen(event_id)
        if seen is not None:
            if seen != event["_content_hash"]:
                raise PoisonRecord(
                    EVENT_ID_CONFLICT, f"event_id {event_id} was applied with other content"
                )
            ledger.last_was_duplicate = True
            return
        ledger.add(event_id, event["_content_hash"])
        arrival = event["_arrival"]
        if record.topic == self.settings.topic_activations:
            effects.on_activation(event, record.partition, arrival)
        elif record.topic == self.settings.topic_registrations:
            effects.on_registration(event, record.partition, arrival)
        else:
            effects.on_observation(event, record.partition, arrival)


class _Ledger:
    """The idempotency ledger for one batch: one read for all event ids, one write."""

    def __init__(self, tx: Tx, now: datetime) -> None:
        self._tx = tx
        # The batch's clock, like every other time the batch writes: retention
        # then prunes by the same clock that judged the events.
        self._processed_at = to_text(now)
        self._known: dict[str, str] = {}
        self._new: dict[str, str] = {}
        self.last_was_duplicate = False

    def preload(self, event_ids: Iterable[str]) -> None:
        ids = sorted(set(event_ids))
        for chunk, placeholders in in_chunks(ids):
            for event_id, content_hash in self._tx.fetchall(
                "SELECT event_id, content_hash FROM processed_events "
                f"WHERE event_id IN ({placeholders})",
                chunk,
            ):
                self._known[event_id] = content_hash

    def seen(self, event_id: str) -> str | None:
        return self._new.get(event_id) or self._known.get(event_id)

    def add(self, event_id: str, content_hash: str) -> None:
        self._new[event_id] = content_hash

    def write(self) -> None:
        if self._new:
            self._tx.executemany(
                "INSERT INTO processed_events (event_id, content_hash, processed_at) "
                "VALUES (?, ?, ?)",
                [
                    (event_id, content_hash, self._processed_at)
                    for event_id, content_hash in self._new.items()
                ],
            )


def _events_of(decoded: Sequence[Decoded], topic: str) -> Iterator[dict[str, Any]]:
    return (event for record, event, _ in decoded if event is not None and record.topic == topic)


def _keys_of(records: Sequence[InputRecord]) -> list[str]:
    return [k for k in (_key_text(r.key) for r in records) if k]


def _header(record: InputRecord, name: str) -> bytes | None:
    return next((value for header, value in record.headers or () if header == name), None)


def _key_text(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return key.decode()
    except UnicodeDecodeError:
        return None


def _describe(messages: Any, prefix: str = "") -> str:
    if isinstance(messages, dict):
        return "; ".join(_describe(v, f"{prefix}/{k}") for k, v in messages.items())
    if isinstance(messages, list) and all(isinstance(m, str) for m in messages):
        return f"{prefix or '/'}: {' '.join(messages)}"
    if isinstance(messages, list):
        return "; ".join(_describe(m, prefix) for m in messages)
    return f"{prefix or '/'}: {messages}"


__all__ = ["BatchOutcome", "BatchProcessor", "PoisonRecord", "SimState"]
