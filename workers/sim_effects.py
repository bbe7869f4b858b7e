"""What one event does to the SIMs it touches, inside the batch's transaction.

States are read once per batch and written once at the end; rules are pure
(workers/rules/); this module is the I/O around them. A change that concerns a
SIM of another partition (a holder's count, a dealer's burst) is not applied
here but sent as a recheck to the worker that owns that SIM, so that only one
worker ever writes a SIM's case.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from simguard.partitioning import partition_for_key
from simguard.settings import Settings
from simguard.store import Tx
from simguard.store.in_lists import in_chunks
from simguard.timefmt import from_text, to_text
from workers import behaviour_hooks, dealers, registry
from workers.cases import next_case
from workers.outbox import OutboxWriter
from workers.rules import registration as reg_rules
from workers.rules.registration import CurrentRegistration
from workers.state import Reason, SimState

UNREGISTERED_DEADLINE = "unregistered"
WAKE_DEADLINE = "wake"


@dataclass(frozen=True, slots=True)
class Arrival:
    """When an event reached simguard, and its times as the store writes them.

    Worked out while the batch is decoded, before the store's writer slot is
    taken: formatting them is a few microseconds an event that a second worker
    would otherwise wait for.
    """

    received_text: str
    # The event's own time (activated_at, registered_at, observed_at).
    at_text: str
    # Activations only: when it is judged UNREGISTERED unless a registration comes.
    unregistered_deadline_text: str | None = None


class SimEffects:
    def __init__(self, tx: Tx, settings: Settings, outbox: OutboxWriter, now: datetime) -> None:
        self.tx = tx
        self.settings = settings
        self.rules = settings.rules
        self.outbox = outbox
        self.now = now
        self.weights = {**reg_rules.weights(self.rules), **behaviour_hooks.weights(self.rules)}
        self._states: dict[str, SimState] = {}
        self._looked_up: set[str] = set()
        # The batch's view of `registrations` rows (None: no row), read once and
        # kept in step with this transaction's own writes.
        self._registrations: dict[str, CurrentRegistration | None] = {}
        # Deadline rows written once, at the end of the batch: UNREGISTERED
        # ones to add (one a registration clears in the same batch is dropped
        # here, never written), and every kind to remove.
        self._unregistered_inserts: dict[tuple[str, str, str], tuple[int, str]] = {}
        self._deadline_deletes: list[tuple[str, str, str]] = []
        self._dirty: set[str] = set()
        self._trigger_received: dict[str, str] = {}
        self._wake_upserts: list[tuple[str, str, str, int, str]] = []

    # --- state access ---------------------------------------------------------------
    def preload(self, imsis: Iterable[str], registering: Iterable[str] = ()) -> None:
        """Read the states of `imsis`, and the registrations of those without a
        state and of `registering`, with a few queries for the whole batch."""
        wanted = sorted({i for i in imsis if i not in self._looked_up})
        self._looked_up.update(wanted)
        for chunk, placeholders in in_chunks(wanted):
            for imsi, state in self.tx.fetchall(
                f"SELECT imsi, state FROM sims WHERE imsi IN ({placeholders})", chunk
            ):
                self._states[imsi] = SimState.from_json_bytes(state)
        stateless = {imsi for imsi in wanted if imsi not in self._states}
        self._preload_registrations(stateless.union(registering))

    def _preload_registrations(self, imsis: Iterable[str]) -> None:
        wanted = sorted({i for i in imsis if i not in self._registrations})
        found = registry.current_registrations(self.tx, wanted)
        for imsi in wanted:
            self._registrations[imsi] = found.get(imsi)

    def registration(self, imsi: str) -> CurrentRegistration | None:
        """The SIM's `registrations` row as this transaction sees it."""
        if imsi not in self._registrations:
            self._preload_registrations([imsi])
        return self._registrations[imsi]

    def state(self, imsi: str, shard: int) -> SimState:
        if imsi not in self._looked_up:
            self.preload([imsi])
        state = self._states.get(imsi)
        if state is None:
            state = SimState(imsi=imsi, shard=shard)
            # A registration bulk-imported before the SIM's first event.
            current = self.registration(imsi)
            if current is not None:
                state.registration = dict(vars(current))
            self._states[imsi] = state
        self._dirty.add(imsi)
        return state

    def lock_ahead(
        self,
        registrations: Iterable[dict[str, Any]],
        activations: Iterable[dict[str, Any]],
        holder_rechecks: Iterable[str],
    ) -> None:
        """Take every holder and dealer lock the batch can need before any of
        it is applied, all in the store's one order (`Tx.lock_all`). Taken
        event by event, two workers whose batches share holders in other
        orders would each wait for the other: a deadlock on PostgreSQL.

        The names are a generator: a store without named locks (SQLite's
        lock_all ignores them) never works them out."""
        self.tx.lock_all(self._lock_names(registrations, activations, holder_rechecks))

    def _lock_names(
        self,
        registrations: Iterable[dict[str, Any]],
        activations: Iterable[dict[str, Any]],
        holder_rechecks: Iterable[str],
    ) -> Iterator[str]:
        for event in registrations:
            yield registry.holder_lock(event["holder_ref"])
            yield from self._current_holder_locks(event["imsi"])
        for imsi in holder_rechecks:
            yield from self._current_holder_locks(imsi)
        for event in activations:
            if event.get("dealer_id"):
                yield dealers.dealer_lock(
                    dealers.dealer_key(str(event["operator"]), str(event["dealer_id"]))
                )

    def _current_holder_locks(self, imsi: str) -> set[str]:
        # The holder as the SIM's state says and as its registrations row says:
        # a registry import may have moved the row on since the state was written.
        holders = set()
        state = self._states.get(imsi)
        if state is not None and state.registration:
            holders.add(state.registration["holder_ref"])
        current = self.registration(imsi)
        if current is not None:
            holders.add(current.holder_ref)
        return {registry.holder_lock(holder) for holder in holders}

    # --- events ---------------------------------------------------------------------
    def on_activation(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        imsi = event["imsi"]
        state = self.state(imsi, shard)
        state.note_identity(event["operator"], event["iccid"], event["msisdn"])
        state.note_use(arrival.at_text, "activation")
        self._trigger_received[imsi] = arrival.received_text
        current = _current_from_state(state)
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
            self._unregistered_inserts[(imsi, UNREGISTERED_DEADLINE, event_id)] = (shard, deadline)
        state.behaviour = behaviour_hooks.apply_activation(state.behaviour, event, self.rules)
        if event.get("dealer_id"):
            for member in dealers.record_activation(self.tx, event, self.rules):
                self._recheck(member, "dealer")

    def on_registration(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        imsi = event["imsi"]
        state = self.state(imsi, shard)
        state.note_identity(event["operator"], event["iccid"], event["msisdn"])
        self._trigger_received[imsi] = arrival.received_text
        holders = sorted(
            {event["holder_ref"]}
            | ({state.registration["holder_ref"]} if state.registration else set())
        )
        for holder in holders:
            self.tx.lock(registry.holder_lock(holder))
        members = {h: registry.holder_members(self.tx, h) for h in holders}
        current, stored = registry.record_registration(
            self.tx, event, self.registration(imsi), arrival.at_text
        )
        self._registrations[imsi] = stored
        state.registration = dict(vars(current))
        after: dict[str, list[str]] = {}
        for holder in holders:
            before = registry.ranking(members[holder])
            after[holder] = registry.ranking(
                registry.with_stored(members[holder], holder, stored, imsi)
            )
            for other in _over_limit_changes(before, after[holder], self.rules.identity_sim_limit):
                if other != imsi:
                    self._recheck(other, "holder")
        self._apply_registration(state, current, after.get(current.holder_ref, []))

    def on_observation(self, event: dict[str, Any], shard: int, arrival: Arrival) -> None:
        imsi = event["imsi"]
        state = self.state(imsi, shard)
        if state.operator is None:
            state.operator = event["operator"]
        state.note_use(arrival.at_text, "observation")
        self._trigger_received[imsi] = arrival.received_text
        state.behaviour = behaviour_hooks.apply_observation(state.behaviour, event, self.rules)

    def on_recheck(self, payload: dict[str, Any], shard: int) -> None:
        imsi = str(payload.get("imsi", ""))
        if not imsi:
            return
        state = self.state(imsi, shard)
        check = payload.get("check")
        if check == "holder":
            # Also sent by the registry import: refresh the SIM's registration.
            current = self.registration(imsi)
            if current is not None:
                self.tx.lock(registry.holder_lock(current.holder_ref))
                ranking = registry.holder_ranking(self.tx, current.holder_ref)
                state.registration = dict(vars(current))
                self._apply_registration(state, current, ranking)
        elif check == "dealer":
            burst = dealers.burst_reason(self.tx, imsi, self.rules)
            if burst is not None and burst.code not in state.registration_reasons:
                state.registration_reasons[burst.code] = burst.to_json()

    def on_deadline(self, imsi: str, shard: int, kind: str, ref: str) -> None:
        state = self.state(imsi, shard)
        if kind != UNREGISTERED_DEADLINE:
            # A wake-up: its row is gone; finish() re-evaluates on the clock.
            state.wake_at = None
            return
        pending = state.pending_activations.pop(ref, None)
        if pending is None:
            return
        self._trigger_received[imsi] = pending["received_at"]
        reason = reg_rules.judge_unregistered(
            _current_from_state(state), pending, from_text(pending["deadline"])
        )
        if reason is not None and reg_rules.UNREGISTERED not in state.registration_reasons:
            state.registration_reasons[reason.code] = reason.to_json()

    # --- shared helpers -------------------------------------------------------------
    def _apply_registration(
        self, state: SimState, current: CurrentRegistration, ranking: list[str]
    ) -> None:
        self._set_over_limit(state, current, ranking)
        if current.verified_active:
            state.registration_reasons.pop(reg_rules.UNREGISTERED, None)
            for event_id in list(state.pending_activations):
                del state.pending_activations[event_id]
                key = (state.imsi, UNREGISTERED_DEADLINE, event_id)
                if self._unregistered_inserts.pop(key, None) is None:
                    self._deadline_deletes.append(key)

    def _set_over_limit(
        self, state: SimState, current: CurrentRegistration, ranking: list[str]
    ) -> None:
        reason = reg_rules.over_limit_reason(state.imsi, current, ranking, self.rules)
        held = state.registration_reasons.get(reg_rules.IDENTITY_OVER_LIMIT)
        if reason is None:
            state.registration_reasons.pop(reg_rules.IDENTITY_OVER_LIMIT, None)
        elif held is None:
            state.registration_reasons[reason.code] = reason.to_json()

    def _recheck(self, imsi: str, check: str) -> None:
        """Ask the worker owning `imsi` to re-evaluate it (possibly this one, later)."""
        shard = registry.shard_of(self.tx, imsi)
        if shard is None:
            shard = partition_for_key(imsi.encode(), self.settings.topic_partitions)
        value = orjson.dumps({"imsi": imsi, "check": check, "at": to_text(self.now)}).decode()
        self.outbox.add(shard, self.settings.topic_rechecks, imsi, value, partition=shard)

    def desired_reasons(self, state: SimState) -> dict[str, Reason]:
        reasons = {code: Reason.from_json(r) for code, r in state.registration_reasons.items()}
        revoked = reg_rules.revoked_reason(
            _current_from_state(state), state.last_use_at, state.last_use_kind
        )
        if revoked is not None:
            reasons[revoked.code] = revoked
        reasons.update(behaviour_hooks.active_reasons(state.behaviour, self.now, self.rules))
        return reasons

    def finish(self, outcome: Any) -> None:
        """Publish case changes of every touched SIM and write the states back."""
        rows = []
        for imsi in sorted(self._dirty):
            state = self._states[imsi]
            change = next_case(
                state, self.desired_reasons(state), self.weights, self.rules.rules_version, self.now
            )
            if change is not None:
                state.case = change.record
                self.outbox.add(
                    state.shard,
                    self.settings.topic_flagged,
                    imsi,
                    orjson.dumps(change.record).decode(),
                    accepted_at=self._trigger_received.get(imsi),
                )
                for code in change.raised:
                    outcome.raised[code] += 1
                for code in change.cleared:
                    outcome.cleared[code] += 1
            self._schedule_wake(state)
            case_status = state.case["status"] if state.case else None
            case_record = orjson.dumps(state.case).decode() if state.case else None
            rows.append(
                (imsi, state.shard, case_status, case_record, state.to_json_bytes().decode())
            )
        self._write_deadlines()
        if rows:
            self.tx.executemany(
                "INSERT INTO sims (imsi, shard, case_status, case_record, state) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (imsi) DO UPDATE SET case_status = excluded.case_status, "
                "case_record = excluded.case_record, state = excluded.state",
                rows,
            )
        self._dirty.clear()

    def _schedule_wake(self, state: SimState) -> None:
        """Keep the SIM's wake-up deadline in step with its behaviour state,
        touching the table only when the time changes (most events do not)."""
        wake = behaviour_hooks.next_wakeup(state.behaviour, self.now, self.rules)
        # A time already past has been evaluated by this very batch.
        wake_at = to_text(wake) if wake is not None and wake > self.now else None
        if wake_at == state.wake_at:
            return
        state.wake_at = wake_at
        if wake_at is None:
            self._deadline_deletes.append((state.imsi, WAKE_DEADLINE, "behaviour"))
        else:
            self._wake_upserts.append(
                (state.imsi, WAKE_DEADLINE, "behaviour", state.shard, wake_at)
            )

    def _write_deadlines(self) -> None:
        if self._deadline_deletes:
            self.tx.executemany(
                "DELETE FROM deadlines WHERE imsi = ? AND kind = ? AND ref = ?",
                self._deadline_deletes,
            )
        if self._unregistered_inserts:
            self.tx.executemany(
                "INSERT INTO deadlines (imsi, kind, ref, shard, due_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (imsi, kind, ref) DO NOTHING",
                [(*key, shard, due) for key, (shard, due) in self._unregistered_inserts.items()],
            )
        if self._wake_upserts:
            self.tx.executemany(
                "INSERT INTO deadlines (imsi, kind, ref, shard, due_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (imsi, kind, ref) DO UPDATE SET due_at = excluded.due_at, "
                "shard = excluded.shard",
                self._wake_upserts,
            )
        self._deadline_deletes.clear()
        self._unregistered_inserts.clear()
        self._wake_upserts.clear()


def _current_from_state(state: SimState) -> CurrentRegistration | None:
    if state.registration is None:
        return None
    return CurrentRegistration(**state.registration)


def _over_limit_changes(before: list[str], after: list[str], limit: int) -> set[str]:
    """SIMs whose over-limit standing differs between two rankings of one holder."""
    beyond_before = set(before[limit:])
    beyond_after = set(after[limit:])
    return beyond_before ^ beyond_after
