"""One batch's unit of work: what it reads from the store, once, and what it
writes back, once, inside the batch's transaction.

The handlers (workers/handlers.py) read and change SIM states, registrations,
deadlines and the ledger through this object only; it loads what a batch
needs in a few queries before any event is applied, keeps the batch's own
writes in view, and writes everything at the end. Every holder whose SIMs
the batch reads or changes is locked before (EventHandlers.lock_ahead, or
before a recheck reads it), so what it reads stays true until the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from simguard.store import Tx
from simguard.store import deadlines as deadline_rows
from simguard.store import ledger as ledger_rows
from simguard.store import notices as notice_rows
from simguard.store import registrations as registration_rows
from simguard.store import sims as sim_rows
from workers import registry
from workers.rules.registration import CurrentRegistration, RegistrationEvent
from workers.state import SimState


class BatchUnit:
    def __init__(self, tx: Tx, processed_at: str, ledger_retention_days: int) -> None:
        self.tx = tx
        self._states: dict[str, SimState] = {}
        self._looked_up: set[str] = set()
        # The batch's view of `registrations` rows (None: no row), read once and
        # kept in step with this transaction's own writes.
        self._registrations: dict[str, CurrentRegistration | None] = {}
        # Registration histories and holders' active SIMs as the batch has
        # read and changed them, and the writes of both tables still to make.
        self._histories: dict[str, dict[tuple[str, str], RegistrationEvent]] = {}
        self._members: dict[str, registry.HolderMembers] = {}
        self._new_events: dict[tuple[str, str, str], RegistrationEvent] = {}
        self._current_rows: dict[str, tuple[Any, ...]] = {}
        self._moved: dict[str, CurrentRegistration] = {}
        self._dirty: set[str] = set()
        # Per touched SIM: when the event that last changed it reached simguard
        # (its case record's publishing latency is measured from it).
        self._triggered_at: dict[str, str] = {}
        # UNREGISTERED deadlines to add (one a registration clears in the same
        # batch is dropped here, never written), wake-ups to set, and any kind
        # to remove.
        self._unregistered: dict[deadline_rows.DeadlineKey, tuple[int, str]] = {}
        self._wakes: list[deadline_rows.DeadlineRow] = []
        self._removed: list[deadline_rows.DeadlineKey] = []
        # Operator notices: each SIM's latest version, and every version made.
        self._notices: dict[str, dict[str, Any]] = {}
        self._notice_feed: list[notice_rows.FeedRow] = []
        self.ledger = BatchLedger(tx, processed_at, ledger_retention_days)

    # --- reads ----------------------------------------------------------------------
    def preload(self, imsis: Iterable[str], registering: Iterable[str] = ()) -> None:
        """Read the states of `imsis`, and the registrations of those without a
        state and of `registering`, with a few queries for the whole batch."""
        wanted = sorted({i for i in imsis if i not in self._looked_up})
        self._looked_up.update(wanted)
        for imsi, shard, raw, case_record, *registration in sim_rows.states_of(self.tx, wanted):
            state = SimState.from_row(imsi, shard, raw, case_record)
            if imsi not in self._registrations:
                self._registrations[imsi] = (
                    None if registration[0] is None else registry.from_row(registration)
                )
            current = self._registrations[imsi]
            state.registration = current
            self._states[imsi] = state
        stateless = {imsi for imsi in wanted if imsi not in self._states}
        registering = set(registering)
        self._preload_registrations(stateless.union(registering))
        # Only a SIM with a registration has a history to read.
        self._load_histories([i for i in registering if self._registrations.get(i) is not None])

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

    def stored_registration(self, imsi: str, stored: CurrentRegistration | None) -> None:
        """What the SIM's `registrations` row holds now (written at the end)."""
        previous = self._registrations.get(imsi)
        self._registrations[imsi] = stored
        # The SIM can only leave its former holder's SIMs and join its new one's.
        for row in (previous, stored):
            if row is not None and row.holder_ref in self._members:
                holder = row.holder_ref
                self._members[holder] = registry.with_stored(
                    self._members[holder], holder, stored, imsi
                )

    # --- the registration tables (registry.RegistrationRows) -------------------------
    def history(self, imsi: str) -> list[RegistrationEvent]:
        self._load_histories([imsi])
        return list(self._histories[imsi].values())

    def add_event(self, imsi: str, event: RegistrationEvent) -> None:
        key = (event.registered_at, event.event_id)
        history = self._histories.get(imsi)
        if history is not None and key in history:
            return  # the first content stays, as the table's key keeps it
        if history is not None:
            history[key] = event
        self._new_events.setdefault((imsi, *key), event)

    def set_current(self, row: tuple[Any, ...]) -> None:
        self._current_rows[row[0]] = row
        self._moved.pop(row[0], None)

    def move_since(self, imsi: str, current: CurrentRegistration) -> None:
        written = self._current_rows.get(imsi)
        if written is None:
            self._moved[imsi] = current
        else:
            since = (current.holder_since, current.holder_since_event, current.revoked_since)
            self._current_rows[imsi] = (*written[:10], *since)

    def holder_members(self, holder_ref: str) -> registry.HolderMembers:
        """The holder's active SIMs as this batch sees them; the holder must be locked."""
        self.preload_holders([holder_ref])
        return self._members[holder_ref]

    def preload_holders(self, holders: Iterable[str]) -> None:
        wanted = sorted({h for h in holders if h not in self._members})
        if not wanted:
            return
        found = registry.members_of(self.tx, wanted)
        # Rows this batch has changed but not yet written.
        for imsi in self._current_rows.keys() | self._moved.keys():
            stored = self._registrations.get(imsi)
            for holder in wanted:
                found[holder] = registry.with_stored(found[holder], holder, stored, imsi)
        self._members.update(found)

    def _load_histories(self, imsis: Iterable[str]) -> None:
        wanted = sorted({i for i in imsis if i not in self._histories})
        if not wanted:
            return
        for imsi in wanted:
            self._histories[imsi] = {}
        for imsi, *row in registration_rows.histories_of(self.tx, wanted):
            event = RegistrationEvent(*row)
            self._histories[imsi][(event.registered_at, event.event_id)] = event
        # Events this batch added before it read the history.
        for (imsi, *key), event in self._new_events.items():
            if imsi in self._histories:
                self._histories[imsi].setdefault((key[0], key[1]), event)

    def stored_state(self, imsi: str) -> SimState | None:
        """The SIM's state if the batch has it, without marking it changed."""
        return self._states.get(imsi)

    def state(self, imsi: str, shard: int) -> SimState:
        """The SIM's state for changing: written back at the end of the batch."""
        if imsi not in self._looked_up:
            self.preload([imsi])
        state = self._states.get(imsi)
        if state is None:
            state = SimState(imsi=imsi, shard=shard)
            # A registration bulk-imported before the SIM's first event.
            state.registration = self.registration(imsi)
            self._states[imsi] = state
        self._dirty.add(imsi)
        return state

    def changed_states(self) -> Iterator[SimState]:
        return (self._states[imsi] for imsi in sorted(self._dirty))

    def triggered(self, imsi: str, received_text: str) -> None:
        self._triggered_at[imsi] = received_text

    def triggered_at(self, imsi: str) -> str | None:
        return self._triggered_at.get(imsi)

    # --- deadlines ------------------------------------------------------------------
    def await_registration(self, imsi: str, event_id: str, shard: int, due: str) -> None:
        self._unregistered[(imsi, deadline_rows.UNREGISTERED, event_id)] = (shard, due)

    def registration_arrived(self, imsi: str, event_id: str) -> None:
        key = (imsi, deadline_rows.UNREGISTERED, event_id)
        if self._unregistered.pop(key, None) is None:
            self._removed.append(key)

    def wake_at(self, state: SimState, due: str | None) -> None:
        if due is None:
            self._removed.append((state.imsi, deadline_rows.WAKE, "behaviour"))
        else:
            self._wakes.append((state.imsi, deadline_rows.WAKE, "behaviour", state.shard, due))

    def notice_changed(self, state: SimState, notice: dict[str, Any]) -> None:
        """A new version of the SIM's notice: written to both notice tables at
        the end, and an open one's deadline kept in step."""
        self._notices[state.imsi] = notice
        self._notice_feed.append(
            (
                notice["notice_id"],
                notice["notice_version"],
                state.imsi,
                notice["operator"],
                notice["status"],
                notice["issued_at"],
                orjson.dumps(notice).decode(),
            )
        )
        if notice["status"] == "open":
            self._wakes.append(
                (state.imsi, deadline_rows.NOTICE, "notice", state.shard, notice["deadline"])
            )

    # --- the end of the batch -------------------------------------------------------
    def write_back(self, rows: list[sim_rows.SimRow]) -> None:
        """Writes the changed SIMs' rows (made by the caller, which decides their
        case records), the deadlines and the ledger."""
        deadline_rows.remove(self.tx, self._removed)
        deadline_rows.add_new(
            self.tx, [(*key, shard, due) for key, (shard, due) in self._unregistered.items()]
        )
        deadline_rows.set_due(self.tx, self._wakes)
        registration_rows.add_events(
            self.tx,
            [
                (imsi, e.registered_at, e.event_id, e.holder_ref, e.status, e.verification)
                for (imsi, _, _), e in self._new_events.items()
            ],
        )
        registration_rows.set_currents(self.tx, list(self._current_rows.values()))
        registration_rows.move_since(
            self.tx,
            [
                (c.holder_since, c.holder_since_event, c.revoked_since, imsi)
                for imsi, c in self._moved.items()
            ],
        )
        sim_rows.write_states(self.tx, rows)
        notice_rows.record(
            self.tx,
            [
                (imsi, n["operator"], n["status"], n["deadline"], orjson.dumps(n).decode())
                for imsi, n in self._notices.items()
            ],
            self._notice_feed,
        )
        self.ledger.write()
        self._notices.clear()
        self._notice_feed.clear()
        self._removed.clear()
        self._unregistered.clear()
        self._wakes.clear()
        self._new_events.clear()
        self._current_rows.clear()
        self._moved.clear()
        self._dirty.clear()


class BatchLedger:
    """The idempotency ledger for one batch: one read for all event ids, one write."""

    def __init__(self, tx: Tx, processed_at: str, retention_days: int) -> None:
        self._tx = tx
        # The batch's clock, like every other time the batch writes: the
        # window a resend is recognised in is counted by the clock that
        # judged the events.
        self._day = ledger_rows.day_of(processed_at)
        self._retention_days = retention_days
        self._known: dict[str, bytes] = {}
        self._new: dict[str, bytes] = {}

    def preload(self, event_ids: Iterable[str]) -> None:
        self._known.update(
            ledger_rows.content_hashes(
                self._tx, sorted(set(event_ids)), self._day, self._retention_days
            )
        )

    def seen(self, event_id: str) -> bytes | None:
        """The content hash `event_id` was applied with, None if it is new."""
        return self._new.get(event_id) or self._known.get(event_id)

    def add(self, event_id: str, content_hash: bytes) -> None:
        self._new[event_id] = content_hash

    def write(self) -> None:
        ledger_rows.record_applied(self._tx, self._new, self._day)
        self._new.clear()
