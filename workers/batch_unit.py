"""One batch's unit of work: what it reads from the store, once, and what it
writes back, once, inside the batch's transaction.

The handlers (workers/handlers.py) read and change SIM states, registrations,
deadlines and the ledger through this object only; it loads what a batch
needs in a few queries before any event is applied, keeps the batch's own
writes in view, and writes everything at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from simguard.store import Tx
from simguard.store import deadlines as deadline_rows
from simguard.store import ledger as ledger_rows
from simguard.store import sims as sim_rows
from workers import registry
from workers.rules.registration import CurrentRegistration
from workers.state import SimState


class BatchUnit:
    def __init__(self, tx: Tx, processed_at: str, ledger_retention_days: int) -> None:
        self.tx = tx
        self._states: dict[str, SimState] = {}
        self._looked_up: set[str] = set()
        # The batch's view of `registrations` rows (None: no row), read once and
        # kept in step with this transaction's own writes.
        self._registrations: dict[str, CurrentRegistration | None] = {}
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
        self.ledger = BatchLedger(tx, processed_at, ledger_retention_days)

    # --- reads ----------------------------------------------------------------------
    def preload(self, imsis: Iterable[str], registering: Iterable[str] = ()) -> None:
        """Read the states of `imsis`, and the registrations of those without a
        state and of `registering`, with a few queries for the whole batch."""
        wanted = sorted({i for i in imsis if i not in self._looked_up})
        self._looked_up.update(wanted)
        for imsi, state, case_record in sim_rows.states_of(self.tx, wanted):
            self._states[imsi] = SimState.from_json_bytes(state, case_record)
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

    def stored_registration(self, imsi: str, stored: CurrentRegistration | None) -> None:
        """What this transaction has just written to the SIM's `registrations` row."""
        self._registrations[imsi] = stored

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
            current = self.registration(imsi)
            if current is not None:
                state.registration = dict(vars(current))
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

    # --- the end of the batch -------------------------------------------------------
    def write_back(self, rows: list[sim_rows.SimRow]) -> None:
        """Writes the changed SIMs' rows (made by the caller, which decides their
        case records), the deadlines and the ledger."""
        deadline_rows.remove(self.tx, self._removed)
        deadline_rows.add_new(
            self.tx, [(*key, shard, due) for key, (shard, due) in self._unregistered.items()]
        )
        deadline_rows.set_due(self.tx, self._wakes)
        sim_rows.write_states(self.tx, rows)
        self.ledger.write()
        self._removed.clear()
        self._unregistered.clear()
        self._wakes.clear()
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
