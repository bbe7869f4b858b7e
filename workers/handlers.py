"""What each kind of record does to the SIMs it touches: the handlers that
call the pure rules (workers/rules/) on states the batch's unit of work
(workers/batch_unit.py) holds.

A change that concerns a SIM of another partition (a holder's count, a
dealer's burst) is not applied here but sent as a recheck to the worker that
owns that SIM, so that only one worker ever writes a SIM's case.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import orjson

from schemas.case_decision import APPLIED, STALE_CASE_VERSION
from schemas.dead_letter import DECISION_ID_CONFLICT
from simguard.partitioning import partition_for_key
from simguard.settings import Rules, Settings
from simguard.store import abnormal_usage
from simguard.store import allow_list as allow_rows
from simguard.store import case_decisions as decision_rows
from simguard.store import deadlines as deadline_rows
from simguard.store import foreign_indicators as foreign_rows
from simguard.store import registrations as registration_rows
from simguard.store.sims import SimRow
from simguard.timefmt import from_text, to_text
from workers import (
    allow_list,
    behaviour_hooks,
    dealers,
    decisions,
    device_groups,
    early_warning,
    notices,
    registry,
)
from workers.batch_unit import BatchUnit
from workers.cases import next_case
from workers.decisions import Decision
from workers.outbox import OutboxWriter
from workers.records import Arrival, PoisonRecord
from workers.rules import registration as reg_rules
from workers.rules import usage
from workers.rules.devices import SIM_DEVICE_CYCLING, device_of, seen_on_day, verified_in_person
from workers.rules.registration import CurrentRegistration, HolderSim
from workers.rules.sightings import to_micros, utc_day
from workers.state import Reason, SimState


class EventHandlers:
    def __init__(
        self, unit: BatchUnit, settings: Settings, outbox: OutboxWriter, now: datetime
    ) -> None:
        self.unit = unit
        self.tx = unit.tx
        self.settings = settings
        self.rules = settings.rules
        self.outbox = outbox
        self.now = now
        self.weights = {**reg_rules.weights(self.rules), **behaviour_hooks.weights(self.rules)}
        # Decisions of this batch: their content hashes (a resend in the same
        # batch), and per SIM the one applied, with its hash, for close().
        self._decision_hashes: dict[str, str] = {}
        self._decided: dict[str, tuple[Decision, str]] = {}
        # (action, outcome) -> count, for the worker's metrics.
        self.decision_outcomes: Counter[tuple[str, str]] = Counter()
        # (operator, seconds from notice to action) of the notices actioned.
        self.notice_actions: list[tuple[str, float]] = []
        self.partners = early_warning.links(self.rules.partners, settings.partner_pseudonym_secret)
        # (partner, status) -> indicators published, for the worker's metrics.
        self.indicators: Counter[tuple[str, str]] = Counter()

    # --- before the batch -----------------------------------------------------------
    def lock_ahead(
        self,
        registrations: Iterable[dict[str, Any]],
        activations: Iterable[dict[str, Any]],
        observations: Iterable[dict[str, Any]],
        holder_rechecks: Iterable[str],
    ) -> None:
        """Take every holder, dealer and handset lock the batch can need before any of
        it is applied, all in the store's one order (`Tx.lock_all`). Taken
        event by event, two workers whose batches share holders in other
        orders would each wait for the other: a deadlock on PostgreSQL.

        The dealers' names are a generator: a store without named locks
        (SQLite's lock_all ignores them) never works them out."""
        registrations = list(registrations)
        holders = self._holders_of(registrations, holder_rechecks)
        self.tx.lock_all(self._lock_names(holders, activations, observations))
        # Under their locks: the batch's view of these holders' SIMs, read at once.
        self.unit.preload_holders(holders)

    def _holders_of(
        self, registrations: Iterable[dict[str, Any]], holder_rechecks: Iterable[str]
    ) -> set[str]:
        """The holders whose SIMs the batch's registrations and rechecks read:
        each event's holder and the SIM's holder until then."""
        holders = set()
        for event in registrations:
            holders.add(event["holder_ref"])
            holders.update(self._current_holders(event["imsi"]))
        for imsi in holder_rechecks:
            holders.update(self._current_holders(imsi))
        return holders

    def _lock_names(
        self,
        holders: Iterable[str],
        activations: Iterable[dict[str, Any]],
        observations: Iterable[dict[str, Any]],
    ) -> Iterator[str]:
        for holder in holders:
            yield registry.holder_lock(holder)
        for event in activations:
            if event.get("dealer_id"):
                yield dealers.dealer_lock(
                    dealers.dealer_key(str(event["operator"]), str(event["dealer_id"]))
                )
            if event.get("imei"):
                yield device_groups.device_lock(device_of(str(event["imei"])))
        for event in observations:
            if event.get("imei"):
                yield device_groups.device_lock(device_of(str(event["imei"])))

    def _current_holders(self, imsi: str) -> set[str]:
        current = self.unit.registration(imsi)
        return set() if current is None else {current.holder_ref}

    # --- records --------------------------------------------------------------------
    def on_activation(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        imsi = event["imsi"]
        state = self.unit.state(imsi, shard)
        if state.saw_activation(str(event["event_id"])):
            # A resend the ledger has forgotten: the first content stays.
            return
        state.note_identity(event["operator"], event["iccid"], event["msisdn"])
        state.note_use(arrival.at_text, "activation")
        self.unit.triggered(imsi, arrival.received_text)
        current = state.registration
        if current is None or not current.verified_active:
            deadline = arrival.unregistered_deadline_text
            assert deadline is not None
            event_id = str(event["event_id"])
            state.pending_activations[event_id] = {
                "event_id": event_id,
                "activated_at": arrival.at_text,
                "received_at": arrival.received_text,
                "deadline": deadline,
            }
            self.unit.await_registration(imsi, event_id, shard, deadline)
        state.behaviour = behaviour_hooks.apply_activation(state.behaviour, event, self.rules)
        if event.get("dealer_id"):
            for member in dealers.record_activation(self.tx, event, self.rules):
                self._recheck(member, "dealer")
        self._record_device(event["imsi"], event.get("imei"), event["activated_at"])

    def on_registration(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        imsi = event["imsi"]
        state = self.unit.state(imsi, shard)
        state.note_identity(event["operator"], event["iccid"], event["msisdn"])
        self.unit.triggered(imsi, arrival.received_text)
        holders = sorted(
            {event["holder_ref"]}
            | ({state.registration.holder_ref} if state.registration else set())
        )
        for holder in holders:
            self.tx.lock(registry.holder_lock(holder))
        members = {h: self.unit.holder_members(h) for h in holders}
        current, stored = registry.record_registration(
            self.unit, event, self.unit.registration(imsi), arrival.at_text
        )
        self.unit.stored_registration(imsi, stored)
        state.registration = current
        after: dict[str, list[HolderSim]] = {}
        for holder in holders:
            before = registry.ranking(members[holder])
            after[holder] = registry.ranking(
                registry.with_stored(members[holder], holder, stored, imsi)
            )
            for other in _over_limit_changes(before, after[holder], self.rules):
                if other != imsi:
                    self._recheck(other, "holder")
        self._apply_registration(state, current, after.get(current.holder_ref, []))
        self._notice(state, notices.after_registration(state.notice, current, self.now))

    def on_observation(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        imsi = event["imsi"]
        state = self.unit.state(imsi, shard)
        if state.operator is None:
            state.operator = event["operator"]
        state.note_use(arrival.at_text, "observation")
        self.unit.triggered(imsi, arrival.received_text)
        imei, at = event.get("imei"), event["observed_at"]
        recorded = bool(imei) and seen_on_day(state.behaviour, str(imei), utc_day(to_micros(at)))
        state.behaviour = behaviour_hooks.apply_observation(state.behaviour, event, self.rules)
        if not recorded:
            self._record_device(imsi, imei, at)

    def on_usage(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        """A SIM's usage counters for one day (reported once: see the processor)."""
        imsi = event["imsi"]
        state = self.unit.state(imsi, shard)
        if state.operator is None:
            state.operator = event["operator"]
        if event["outgoing_calls"] > 0:
            # Calls were made that day; the first instant of it is the latest
            # time that is certain (REGISTRATION_REVOKED counts use after it).
            state.note_use(arrival.at_text, "usage")
        self.unit.triggered(imsi, arrival.received_text)
        if usage.is_abnormal(event, self.rules):
            state.behaviour = behaviour_hooks.apply_usage(state.behaviour, event, self.rules)
            abnormal_usage.add(self.tx, usage.day_number(str(event["day"])), event, state.msisdn)

    def on_foreign_indicator(self, partner: str, indicator: dict[str, Any]) -> str:
        """A partner's latest word on one of its SIMs; an older case version
        than the one kept (a replay, a late copy) changes nothing."""
        kept = foreign_rows.version_of(self.tx, partner, indicator["subject"])
        if kept is not None and kept >= indicator["case_version"]:
            return "duplicate"
        since = indicator["since"]
        foreign_rows.put(
            self.tx,
            {
                **indicator,
                "partner": partner,
                "reasons": ",".join(indicator["reasons"]),
                "since": to_text(since) if since is not None else None,
                "updated_at": to_text(indicator["updated_at"]),
                "received_at": to_text(self.now),
            },
        )
        return "applied"

    def on_recheck(self, imsi: str, check: str, shard: int) -> None:
        state = self.unit.state(imsi, shard)
        if check == "holder":
            # Also sent by the registry import: refresh the SIM's registration.
            current = self.unit.registration(imsi)
            if current is not None:
                if state.operator is None:
                    self._identity_from_registry(state)
                self.tx.lock(registry.holder_lock(current.holder_ref))
                ranking = registry.ranking(self.unit.holder_members(current.holder_ref))
                state.registration = current
                self._apply_registration(state, current, ranking)
                self._notice(state, notices.after_registration(state.notice, current, self.now))
        elif check == "dealer":
            burst = dealers.burst_reason(self.tx, imsi, self.rules)
            if burst is not None and burst.code not in state.held_reasons:
                state.held_reasons[burst.code] = burst.to_json()
        elif check == "device":
            group = device_groups.group_reason(self.tx, imsi, self.rules)
            if group is not None and group.code not in state.held_reasons:
                state.held_reasons[group.code] = group.to_json()

    def on_deadline(self, imsi: str, shard: int, kind: str, ref: str) -> None:
        state = self.unit.state(imsi, shard)
        if kind == deadline_rows.NOTICE:
            self._notice(state, notices.at_deadline(state.notice, self.now))
            return
        if kind != deadline_rows.UNREGISTERED:
            # A wake-up: its row is gone; close() re-evaluates on the clock.
            state.wake_at = None
            return
        pending = state.pending_activations.pop(ref, None)
        if pending is None:
            return
        self.unit.triggered(imsi, pending["received_at"])
        reason = reg_rules.judge_unregistered(
            state.registration, pending, from_text(pending["deadline"])
        )
        held = state.held_reasons.get(reg_rules.UNREGISTERED)
        # A dismissed activation's reason gives way to a newly judged one.
        if reason is not None and (
            held is None or decisions.covers(state.dismissals, Reason.from_json(held), self.now)
        ):
            state.held_reasons[reason.code] = reason.to_json()

    def on_decision(self, decision: Decision, content_hash: str, shard: int) -> str:
        """Applies a regulator's decision to the SIM's case, or records why not;
        the audit record and the store's row are written either way."""
        known = self._decision_hashes.get(decision.decision_id) or decision_rows.content_hash_of(
            self.tx, decision.decision_id
        )
        if known is not None:
            if known != content_hash:
                raise PoisonRecord(
                    DECISION_ID_CONFLICT,
                    f"decision {decision.decision_id} was recorded with other content",
                )
            return "duplicate"
        self._decision_hashes[decision.decision_id] = content_hash
        state = self.unit.state(decision.imsi, shard)
        if decision.imsi in self._decided:
            # An earlier decision of this batch moves the case past this one's version.
            outcome, dismissed = STALE_CASE_VERSION, decisions.Dismissals()
        else:
            outcome, dismissed = decisions.judge(state.case, decision, self.desired_reasons(state))
        if outcome == APPLIED:
            state.dismissals.update(dismissed)
            self._decided[decision.imsi] = (decision, content_hash)
        else:
            self._audit(decision, content_hash, outcome, None, shard)
        return "applied"

    def _identity_from_registry(self, state: SimState) -> None:
        """A SIM known only from the registry import has no operator, ICCID or
        MSISDN in its state yet; its case record takes them from its row."""
        row = registration_rows.registration_of(
            self.tx, state.imsi, ("operator", "iccid", "msisdn")
        )
        if row is not None:
            state.note_identity(row["operator"], row["iccid"], row["msisdn"])

    # --- shared by the records ------------------------------------------------------
    def _apply_registration(
        self, state: SimState, current: CurrentRegistration, ranking: list[HolderSim]
    ) -> None:
        self._set_over_limit(state, current, ranking)
        if current.verified_active:
            state.held_reasons.pop(reg_rules.UNREGISTERED, None)
            for event_id in list(state.pending_activations):
                del state.pending_activations[event_id]
                self.unit.registration_arrived(state.imsi, event_id)

    def _set_over_limit(
        self, state: SimState, current: CurrentRegistration, ranking: list[HolderSim]
    ) -> None:
        reason = reg_rules.over_limit_reason(state.imsi, current, ranking, self.rules)
        held = state.held_reasons.get(reg_rules.IDENTITY_OVER_LIMIT)
        if reason is None:
            state.held_reasons.pop(reg_rules.IDENTITY_OVER_LIMIT, None)
        elif held is None:
            state.held_reasons[reason.code] = reason.to_json()

    def _record_device(self, imsi: str, imei: object, at: datetime) -> None:
        if imei:
            for member in device_groups.record_sighting(self.tx, imsi, str(imei), at, self.rules):
                self._recheck(member, "device")

    def _recheck(self, imsi: str, check: str) -> None:
        """Ask the worker owning `imsi` to re-evaluate it (possibly this one, later)."""
        shard = registry.shard_of(self.tx, imsi)
        if shard is None:
            shard = partition_for_key(imsi.encode(), self.settings.topic_partitions)
        value = orjson.dumps({"imsi": imsi, "check": check, "at": to_text(self.now)}).decode()
        self.outbox.add(shard, self.settings.topic_rechecks, imsi, value, partition=shard)

    # --- the end of the batch -------------------------------------------------------
    def desired_reasons(self, state: SimState) -> dict[str, Reason]:
        reasons = {code: Reason.from_json(r) for code, r in state.held_reasons.items()}
        revoked = reg_rules.revoked_reason(
            state.registration, state.last_use_at, state.last_use_kind
        )
        if revoked is not None:
            reasons[revoked.code] = revoked
        reasons.update(behaviour_hooks.active_reasons(state.behaviour, self.now, self.rules))
        if verified_in_person(state.registration):
            reasons.pop(SIM_DEVICE_CYCLING, None)
        return reasons

    def close(self, raised: Counter[str], cleared: Counter[str]) -> None:
        """Publish the case changes of every touched SIM, then have the unit of
        work write the batch back."""
        rows: list[SimRow] = []
        states = list(self.unit.changed_states())
        allowed = allow_rows.in_force_for(
            self.tx,
            [name for state in states for name in _allow_list_names(state)],
            to_text(self.now),
        )
        for state in states:
            state.dismissals = decisions.in_force(state.dismissals, self.now)
            allowance = allow_list.allowance(allowed, _allow_list_names(state))
            reasons = allow_list.without_allowed(
                decisions.without_dismissed(
                    self.desired_reasons(state), state.dismissals, self.now
                ),
                allowance,
            )
            decided = self._decided.get(state.imsi)
            change = next_case(
                state,
                reasons,
                self.weights,
                self.rules.rules_version,
                self.now,
                decision=None if decided is None else decided[0].to_json(),
            )
            if decided is not None:
                # A decision always makes a new record: next_case is given one.
                assert change is not None
                self._audit(decided[0], decided[1], APPLIED, change.record["version"], state.shard)
            if change is not None:
                state.case = change.record
                self.outbox.add(
                    state.shard,
                    self.settings.topic_flagged,
                    state.imsi,
                    orjson.dumps(change.record).decode(),
                    accepted_at=self.unit.triggered_at(state.imsi),
                )
                raised.update(change.raised)
                cleared.update(change.cleared)
                self._notice(
                    state,
                    notices.after_case_change(
                        state.notice, change.record, change.raised, self.rules, self.now
                    ),
                )
                self._tell_partners(state, change.record)
            self._schedule_wake(state, None if allowance is None else allowance.until)
            case_status = state.case["status"] if state.case else None
            case_record = orjson.dumps(state.case).decode() if state.case else None
            rows.append(
                (state.imsi, state.shard, case_status, case_record, state.to_json_bytes().decode())
            )
        self.unit.write_back(rows)

    def _notice(self, state: SimState, notice: dict[str, Any] | None) -> None:
        """A new version of the SIM's notice: kept in its state, written to the
        notice tables and published on its operator's notice topic."""
        if notice is None:
            return
        state.notice = notice
        self.unit.notice_changed(state, notice)
        self.outbox.add(
            state.shard,
            self.settings.notice_topic(notice["operator"]),
            state.imsi,
            orjson.dumps(notice).decode(),
        )
        seconds = notices.seconds_to_action(notice)
        if seconds is not None:
            self.notice_actions.append((notice["operator"], seconds))

    def _tell_partners(self, state: SimState, record: dict[str, Any]) -> None:
        """Each partner's indicator of the SIM's new case version, if it has one."""
        for link in self.partners:
            told = early_warning.indicator(
                link,
                record,
                self.weights,
                self.rules.home_country,
                link.country in state.shared_with,
            )
            if told is None:
                continue
            self.outbox.add(
                state.shard,
                self.settings.indicator_topic(link.country),
                told["subject"],
                orjson.dumps(told).decode(),
            )
            others = [country for country in state.shared_with if country != link.country]
            state.shared_with = others + ([link.country] if told["status"] == "flagged" else [])
            self.indicators[(link.country, told["status"])] += 1

    def _audit(
        self,
        decision: Decision,
        content_hash: str,
        outcome: str,
        resulting_version: int | None,
        shard: int,
    ) -> None:
        """The decision's audit record on the audit topic, and its row in the store."""
        record = {
            **decision.to_json(),
            "imsi": decision.imsi,
            "outcome": outcome,
            "applied_at": to_text(self.now),
            "resulting_version": resulting_version,
        }
        self.outbox.add(
            shard, self.settings.topic_decisions_audit, decision.imsi, orjson.dumps(record).decode()
        )
        decision_rows.add(
            self.tx,
            [
                (
                    decision.decision_id,
                    decision.imsi,
                    decision.action,
                    decision.case_version,
                    decision.reason,
                    ",".join(decision.codes),
                    record["expires_at"],
                    decision.decided_by,
                    record["decided_at"],
                    outcome,
                    record["applied_at"],
                    resulting_version,
                    content_hash,
                )
            ],
        )
        self.decision_outcomes[(decision.action, outcome)] += 1

    def _schedule_wake(self, state: SimState, allowed_until: datetime | None) -> None:
        """Keep the SIM's wake-up deadline in step with its behaviour state,
        its dismissals' expiries and the allow-list entry it is under,
        touching the table only when the time changes (most events do not)."""
        wakes = [
            wake
            for wake in (
                behaviour_hooks.next_wakeup(state.behaviour, self.now, self.rules),
                decisions.next_expiry(state.dismissals, self.now),
                allowed_until,
            )
            if wake is not None
        ]
        wake = min(wakes, default=None)
        # A time already past has been evaluated by this very batch.
        wake_at = to_text(wake) if wake is not None and wake > self.now else None
        if wake_at == state.wake_at:
            return
        state.wake_at = wake_at
        self.unit.wake_at(state, wake_at)


def _allow_list_names(state: SimState) -> tuple[str, ...]:
    """What an allow-list entry may name for the SIM: its IMSI and its holder."""
    if state.registration is None:
        return (state.imsi,)
    return (state.imsi, state.registration.holder_ref)


def _over_limit_changes(before: list[HolderSim], after: list[HolderSim], rules: Rules) -> set[str]:
    """SIMs whose over-limit standing differs between two rankings of one holder."""
    return reg_rules.over_limit_sims(before, rules) ^ reg_rules.over_limit_sims(after, rules)
