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
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from marshmallow import Schema, ValidationError

from schemas import attestation, operator_signature
from schemas.case_decision import CaseDecisionSchema
from schemas.dead_letter import (
    BAD_OPERATOR_SIGNATURE,
    EVENT_ID_CONFLICT,
    INVALID_DECISION,
    INVALID_EVENT,
    INVALID_RECHECK,
    NOT_THE_PARTNERS,
    UNPARSEABLE,
    UNSIGNED_RECORD,
    USAGE_DAY_CONFLICT,
    WRONG_PARTITION,
)
from schemas.events import EVENT_KINDS, EventKind
from schemas.fast_events import FAST_SCHEMAS, FastEventLoader
from schemas.indicator import IndicatorSchema
from schemas.partner_sighting import PartnerSightingSchema, foreign_problems
from schemas.recheck import RecheckSchema
from simguard.partitioning import partition_for_key
from simguard.settings import Settings
from simguard.store import Tx
from simguard.store import deadlines as deadline_rows
from simguard.store import ledger as ledger_rows
from simguard.timefmt import from_millis, from_text, to_text, utc_now
from workers import dead_letter
from workers.batch_unit import BatchUnit
from workers.decisions import Decision
from workers.handlers import EventHandlers
from workers.outbox import OutboxWriter
from workers.records import (
    LOG_APPEND_TIME,
    Arrival,
    Decoded,
    DecodedDecision,
    DecodedEvent,
    DecodedForeignIndicator,
    DecodedRecheck,
    InputRecord,
    PoisonRecord,
    Refused,
)
from workers.rules import registration as reg_rules

Handler = Callable[[EventHandlers, dict[str, Any], int, Arrival], None]
# A home operator's PLMN id is the IMSI's first five digits (MCC and a
# two-digit MNC, as in Thailand): what a partner's sighting is filed under.
HOME_PLMN_DIGITS = 5


@dataclass(frozen=True, slots=True)
class InputTopic:
    """How the worker reads one of the three input topics."""

    kind: str
    # The event's own time: "the future" is judged on it, and the rules use it.
    event_kind: EventKind
    schema: Schema
    # The same checks, faster; None where the schema is the only path.
    fast: FastEventLoader | None
    handle: Handler
    # A partner regulator's replicated sightings: trusted by the topic (only
    # the link's principal writes it), checked in full, and the partner's.
    partner: str | None = None


_HANDLERS: dict[str, Handler] = {
    "activations": EventHandlers.on_activation,
    "registrations": EventHandlers.on_registration,
    "network_events": EventHandlers.on_observation,
    "usage": EventHandlers.on_usage,
}


@dataclass
class BatchOutcome:
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    dead_letters: Counter[tuple[str, str]] = field(default_factory=Counter)
    raised: Counter[str] = field(default_factory=Counter)
    cleared: Counter[str] = field(default_factory=Counter)
    # (action, outcome) of the regulators' decisions the batch recorded.
    decisions: Counter[tuple[str, str]] = field(default_factory=Counter)
    # (operator, seconds from notice to action) of the notices it closed as actioned.
    notice_actions: list[tuple[str, float]] = field(default_factory=list)
    # (partner, status) of the early-warning indicators published.
    indicators: Counter[tuple[str, str]] = field(default_factory=Counter)
    outbox_rows: int = 0


class BatchProcessor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rules = settings.rules
        # Partitions per input topic, as the broker has them (the loop sets
        # them at start); settings.topic_partitions until then.
        self.partition_counts: dict[str, int] = {}
        # "The future" of a record produced straight to Kafka is measured from
        # its broker timestamp, not from when a worker gets to it.
        self._judged_at = utc_now()
        self._inputs = {
            topic: self._input_topic(kind)
            for topic, kind in (
                (settings.topic_activations, "activations"),
                (settings.topic_registrations, "registrations"),
                (settings.topic_network_events, "network_events"),
                (settings.topic_usage, "usage"),
            )
        }
        for topic, partner in settings.partner_sighting_topics().items():
            self._inputs[topic] = InputTopic(
                "network_events",
                EVENT_KINDS["network_events"],
                PartnerSightingSchema(clock=self._judging_clock),
                None,
                EventHandlers.on_observation,
                partner,
            )
        self._foreign_indicator_topics = settings.foreign_indicator_topics()
        # Whatever a partner sent goes to that partner's dead letters.
        self._partner_of_topic = {
            **settings.partner_sighting_topics(),
            **self._foreign_indicator_topics,
        }
        self._indicator_schema = IndicatorSchema(clock=self._judging_clock)
        self._recheck_schema = RecheckSchema()
        self._decision_schema = CaseDecisionSchema()

    def _input_topic(self, kind: str) -> InputTopic:
        # Schemas built once: constructing one costs more than loading an event.
        schema = EVENT_KINDS[kind].wire_schema(clock=self._judging_clock)
        # Records produced straight to Kafka (not signed by the API) are
        # checked by the same fast path as the API's, then by the schema only
        # when that is not sure (none for registrations, whose wire form it lacks).
        fast = (
            FastEventLoader(type(schema), clock=self._judging_clock)
            if type(schema) in FAST_SCHEMAS
            else None
        )
        return InputTopic(kind, EVENT_KINDS[kind], schema, fast, _HANDLERS[kind])

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
                decoded.append(self._decode(record, now))
            except PoisonRecord as poison:
                decoded.append(Refused(record, poison))
        return decoded

    def apply_records(self, tx: Tx, decoded: Sequence[Decoded], now: datetime) -> BatchOutcome:
        outcome = BatchOutcome()
        outbox = OutboxWriter()
        unit = BatchUnit(tx, to_text(now), self.settings.ledger_retention_days)
        handlers = EventHandlers(unit, self.settings, outbox, now)
        events = [d for d in decoded if isinstance(d, DecodedEvent)]
        rechecks = [d for d in decoded if isinstance(d, DecodedRecheck)]
        unit.preload(
            _keys_of(d.record for d in decoded),
            registering=(d.event["imsi"] for d in self._of_kind(events, "registrations")),
        )
        # Generators: only a store that takes named locks runs through them.
        handlers.lock_ahead(
            registrations=(d.event for d in self._of_kind(events, "registrations")),
            activations=(d.event for d in self._of_kind(events, "activations")),
            observations=(d.event for d in self._of_kind(events, "network_events")),
            holder_rechecks=(d.imsi for d in rechecks if d.check == "holder"),
        )
        unit.ledger.preload(
            [d.event_id for d in events] + [d.report[0] for d in events if d.report is not None]
        )

        for item in decoded:
            try:
                if isinstance(item, Refused):
                    raise item.poison
                result = self._apply_one(item, unit, handlers)
            except PoisonRecord as problem:
                outbox.add(
                    item.record.partition,
                    self.dead_letter_topic(item.record.topic),
                    _key_text(item.record.key),
                    dead_letter.record_value(item.record, problem.error, problem.detail, now),
                )
                outcome.outcomes[(item.record.topic, "dead_lettered")] += 1
                outcome.dead_letters[(item.record.topic, problem.error)] += 1
            else:
                outcome.outcomes[(item.record.topic, result)] += 1

        handlers.close(outcome.raised, outcome.cleared)
        outcome.decisions.update(handlers.decision_outcomes)
        outcome.notice_actions.extend(handlers.notice_actions)
        outcome.indicators.update(handlers.indicators)
        outcome.outbox_rows = len(outbox)
        outbox.write(tx)
        return outcome

    def apply_due(self, tx: Tx, shards: Iterable[int], now: datetime) -> BatchOutcome:
        """Deadlines of the owned shards that are due on the worker's clock."""
        outcome = BatchOutcome()
        due = deadline_rows.due(tx, sorted(shards), to_text(now))
        if not due:
            return outcome
        outbox = OutboxWriter()
        unit = BatchUnit(tx, to_text(now), self.settings.ledger_retention_days)
        handlers = EventHandlers(unit, self.settings, outbox, now)
        unit.preload(imsi for imsi, _, _, _ in due)
        deadline_rows.remove(tx, [(imsi, kind, ref) for imsi, kind, ref, _ in due])
        for imsi, kind, ref, shard in due:
            handlers.on_deadline(imsi, shard, kind, ref)
        handlers.close(outcome.raised, outcome.cleared)
        outcome.outbox_rows = len(outbox)
        outbox.write(tx)
        return outcome

    def _of_kind(self, events: Sequence[DecodedEvent], kind: str) -> Iterator[DecodedEvent]:
        return (d for d in events if self._inputs[d.record.topic].kind == kind)

    # --- one record -----------------------------------------------------------------
    def _decode(
        self, record: InputRecord, now: datetime
    ) -> DecodedEvent | DecodedRecheck | DecodedDecision | DecodedForeignIndicator:
        if record.value is None:
            raise PoisonRecord(UNPARSEABLE, "record has no value")
        partner = self._foreign_indicator_topics.get(record.topic)
        if partner is not None:
            # Keyed by the partner's subject, on its own SIM's partition: not ours to check.
            return self._foreign_indicator(record, partner, _json_object(record.value))
        self._check_partition(record)
        payload = _json_object(record.value)
        if record.topic == self.settings.topic_rechecks:
            return self._recheck(record, payload)
        if record.topic == self.settings.topic_decisions:
            return self._decision(record, payload)
        topic = self._inputs[record.topic]
        received = self._received(record, now)
        if topic.partner is not None:
            event = self._partner_sighting(topic, topic.partner, payload, received)
        else:
            event = self._attested_event(record, topic, payload) or self._operator_signed_event(
                record, topic, payload, received
            )
        key = _key_text(record.key)
        if key is not None and key != event["imsi"]:
            raise PoisonRecord(INVALID_EVENT, "record key is not the event's IMSI")
        content_hash = ledger_rows.content_hash(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS))
        return DecodedEvent(
            record,
            event,
            content_hash,
            self._arrival(topic, event, received),
            _daily_report(topic.event_kind, event),
        )

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

    def _recheck(self, record: InputRecord, payload: dict[str, Any]) -> DecodedRecheck:
        try:
            recheck: dict[str, Any] = self._recheck_schema.load(payload)
        except ValidationError as exc:
            raise PoisonRecord(INVALID_RECHECK, _describe(exc.messages)) from exc
        if _key_text(record.key) != recheck["imsi"]:
            raise PoisonRecord(INVALID_RECHECK, "record key is not the recheck's IMSI")
        return DecodedRecheck(record, recheck["imsi"], recheck["check"])

    def _decision(self, record: InputRecord, payload: dict[str, Any]) -> DecodedDecision:
        """Only the API publishes decisions, having checked the regulator's key:
        a record it did not sign is refused, whoever could write the topic."""
        signature = _header(record, attestation.HEADER)
        if signature is None or not attestation.verify(
            self.settings.attestation_secret, record.value or b"", signature
        ):
            raise PoisonRecord(INVALID_DECISION, "the decision does not carry the API's signature")
        try:
            loaded: dict[str, Any] = self._decision_schema.load(payload)
        except ValidationError as exc:
            raise PoisonRecord(INVALID_DECISION, _describe(exc.messages)) from exc
        if _key_text(record.key) != loaded["imsi"]:
            raise PoisonRecord(INVALID_DECISION, "record key is not the decision's IMSI")
        content = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
        return DecodedDecision(
            record, Decision.from_wire(loaded), hashlib.sha256(content).hexdigest()
        )

    def _received(self, record: InputRecord, now: datetime) -> datetime:
        """When the broker appended the record (input topics are LogAppendTime,
        checked at start); a producer's own timestamp is never believed."""
        if record.timestamp_type == LOG_APPEND_TIME and record.timestamp and record.timestamp > 0:
            return from_millis(record.timestamp)
        return now

    def _arrival(self, topic: InputTopic, event: dict[str, Any], received: datetime) -> Arrival:
        at = topic.event_kind.moment(event)
        deadline = None
        if topic.kind == "activations":
            deadline = to_text(reg_rules.unregistered_deadline(at, received, self.rules))
        return Arrival(to_text(received), to_text(at), deadline)

    def _attested_event(
        self, record: InputRecord, topic: InputTopic, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The event as loaded, when the API's signature shows it validated it."""
        signature = _header(record, attestation.HEADER)
        if signature is None or record.value is None:
            return None
        if not attestation.verify(self.settings.attestation_secret, record.value, signature):
            return None
        try:
            if topic.event_kind.time_is_day:
                # Its wire form is its loaded form: the day stays a string.
                return payload
            time_field = topic.event_kind.time_field
            return {**payload, time_field: from_text(payload[time_field])}
        except (KeyError, TypeError, ValueError):
            return None

    def _operator_signed_event(
        self, record: InputRecord, topic: InputTopic, payload: dict[str, Any], received: datetime
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
        event = topic.fast.load(payload) if topic.fast is not None else None
        if event is None:
            try:
                event = topic.schema.load(payload)
            except ValidationError as exc:
                raise PoisonRecord(INVALID_EVENT, _describe(exc.messages)) from exc
        return event

    def _foreign_indicator(
        self, record: InputRecord, partner: str, payload: dict[str, Any]
    ) -> DecodedForeignIndicator:
        """What a partner says about its own SIM: in the indicator format, and its own."""
        try:
            loaded: dict[str, Any] = self._indicator_schema.load(payload)
        except ValidationError as exc:
            raise PoisonRecord(INVALID_EVENT, _describe(exc.messages)) from exc
        if loaded["home_country"] != partner:
            raise PoisonRecord(
                NOT_THE_PARTNERS, f"/home_country: {partner} speaks for its own SIMs only"
            )
        return DecodedForeignIndicator(record, partner, loaded)

    def _partner_sighting(
        self, topic: InputTopic, partner: str, payload: dict[str, Any], received: datetime
    ) -> dict[str, Any]:
        """A partner's sighting as the network observation our rules read: on
        its network, of our SIM, whose operator is the IMSI's home PLMN id."""
        self._judged_at = received
        try:
            sighting: dict[str, Any] = topic.schema.load(payload)
        except ValidationError as exc:
            raise PoisonRecord(INVALID_EVENT, _describe(exc.messages)) from exc
        problems = foreign_problems(sighting, partner, self.rules.home_country)
        if problems:
            raise PoisonRecord(NOT_THE_PARTNERS, "; ".join(problems))
        return {"operator": sighting["imsi"][:HOME_PLMN_DIGITS], **sighting}

    def dead_letter_topic(self, topic: str) -> str:
        """Where a record of `topic` that cannot be applied goes."""
        partner = self._partner_of_topic.get(topic)
        if partner is not None:
            return self.settings.partner_dead_letter_topic(partner)
        return self.settings.topic_dead_letter

    def _apply_one(
        self,
        item: DecodedEvent | DecodedRecheck | DecodedDecision | DecodedForeignIndicator,
        unit: BatchUnit,
        handlers: EventHandlers,
    ) -> str:
        """Applies one record; gives the outcome counted for it."""
        if isinstance(item, DecodedRecheck):
            handlers.on_recheck(item.imsi, item.check, item.record.partition)
            return "applied"
        if isinstance(item, DecodedDecision):
            return handlers.on_decision(item.decision, item.content_hash, item.record.partition)
        if isinstance(item, DecodedForeignIndicator):
            return handlers.on_foreign_indicator(item.partner, item.indicator)
        seen = unit.ledger.seen(item.event_id)
        if seen is not None:
            if seen != item.content_hash:
                raise PoisonRecord(
                    EVENT_ID_CONFLICT, f"event_id {item.event_id} was applied with other content"
                )
            return "duplicate"
        if item.report is not None:
            report_key, counters_hash = item.report
            reported = unit.ledger.seen(report_key)
            if reported is not None and reported != counters_hash:
                raise PoisonRecord(
                    USAGE_DAY_CONFLICT,
                    f"usage of {item.event['day']} was already reported for this SIM "
                    "with other counters",
                )
            unit.ledger.add(item.event_id, item.content_hash)
            if reported is not None:
                return "duplicate"
            unit.ledger.add(report_key, counters_hash)
        unit.ledger.add(item.event_id, item.content_hash)
        topic = self._inputs[item.record.topic]
        topic.handle(handlers, item.event, item.record.partition, item.arrival)
        return "applied"


def _json_object(value: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise PoisonRecord(UNPARSEABLE, f"not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise PoisonRecord(UNPARSEABLE, "value is not a JSON object")
    return payload


def _daily_report(kind: EventKind, event: dict[str, Any]) -> tuple[str, bytes] | None:
    """A daily report's ledger key (its SIM and day) and the hash of what it says."""
    if not kind.time_is_day:
        return None
    counters = {name: value for name, value in event.items() if name != "event_id"}
    key = f"{kind.name}:{event['imsi']}:{event[kind.time_field]}"
    return key, ledger_rows.content_hash(orjson.dumps(counters, option=orjson.OPT_SORT_KEYS))


def _keys_of(records: Iterable[InputRecord]) -> list[str]:
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


__all__ = ["LOG_APPEND_TIME", "BatchOutcome", "BatchProcessor", "InputRecord", "PoisonRecord"]
