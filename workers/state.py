"""Per-SIM state the rules read and write, kept compact and serialised as JSON
in the `sims` table. Each rule family owns its own part; the worker owns the
rest (identity of the SIM, the last case record)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from simguard.timefmt import from_text, to_text

if TYPE_CHECKING:
    from workers.rules.registration import CurrentRegistration

# A SIM is activated a few times in its life (a new card, a reactivation):
# the last few are what a late resend can repeat. 48 bits tell a SIM's few
# activations apart with room to spare.
ACTIVATIONS_REMEMBERED = 4
ACTIVATION_DIGEST_CHARS = 12


@dataclass(frozen=True)
class Reason:
    """One active reason on a SIM's case."""

    code: str
    since: datetime
    evidence: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "since": to_text(self.since), "evidence": self.evidence}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Reason:
        return Reason(data["code"], from_text(data["since"]), data["evidence"])


@dataclass
class SimState:
    imsi: str
    shard: int
    operator: str | None = None
    iccid: str | None = None
    msisdn: str | None = None
    # Latest activation or observation time: REGISTRATION_REVOKED's "use".
    last_use_at: str | None = None
    last_use_kind: str | None = None
    # The SIM's current registration as the rules need it: its `registrations`
    # row, read with the state (not stored in it).
    registration: CurrentRegistration | None = None
    # Activations still waiting for their UNREGISTERED deadline: event_id -> facts.
    pending_activations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Short digests of the SIM's latest activations' event ids: a resend that
    # comes after the ledger's window is still known here, and is not judged
    # by UNREGISTERED a second time (README, "Resends").
    activations_seen: list[str] = field(default_factory=list)
    # Reasons a rule decided once and the SIM holds until that rule clears them:
    # UNREGISTERED (a judged deadline), IDENTITY_OVER_LIMIT (its holder's count)
    # and BULK_ACTIVATION_BURST (its dealer's activations). The behaviour rules' reasons
    # are worked out anew from `behaviour` instead.
    held_reasons: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Opaque to the worker: owned by the behaviour rules (roaming, border, travel, dealers).
    behaviour: dict[str, Any] = field(default_factory=dict)
    # Reasons a regulator dismissed, per code: the occurrence dismissed and
    # until when (workers/decisions.py).
    dismissals: dict[str, dict[str, str]] = field(default_factory=dict)
    # The SIM's operator notice, current version (workers/notices.py).
    notice: dict[str, Any] | None = None
    # Partner regulators holding a `flagged` indicator of the SIM (workers/early_warning.py).
    shared_with: list[str] = field(default_factory=list)
    # When the behaviour rules or a dismissal's expiry next need the clock
    # (mirrors the deadlines row).
    wake_at: str | None = None
    # The last case record published for this SIM (None until first flagged).
    case: dict[str, Any] | None = None

    def to_json_bytes(self) -> bytes:
        """The state as the `sims.state` column keeps it: without what other
        columns hold (the IMSI, the shard, the case record in
        `sims.case_record`, the registration in `registrations`), and without
        the fields still at their empty defaults (most SIMs have no pending
        activation, held reason, wake-up or case)."""
        data = {}
        for name in _STORED_FIELDS:
            value = getattr(self, name)
            if value:
                data[name] = value
        return orjson.dumps(data)

    @staticmethod
    def from_row(
        imsi: str, shard: int, raw: bytes | str, case_record: bytes | str | None = None
    ) -> SimState:
        """The state from its `sims` row; its registration is the caller's to set."""
        data = orjson.loads(raw)
        # The field's former name: states stored under it still load.
        if "registration_reasons" in data:
            data["held_reasons"] = data.pop("registration_reasons")
        # Older states carry copies of what now has a column of its own.
        for copied in _NOT_STORED:
            data.pop(copied, None)
        state = SimState(imsi=imsi, shard=int(shard), **data)
        if case_record is not None:
            state.case = orjson.loads(case_record)
        return state

    def note_identity(self, operator: str, iccid: str | None, msisdn: str | None) -> None:
        self.operator = operator
        if iccid:
            self.iccid = iccid
        if msisdn:
            self.msisdn = msisdn

    def saw_activation(self, event_id: str) -> bool:
        """Whether the SIM already had this activation; remembers it if not."""
        digest = hashlib.sha256(event_id.encode()).hexdigest()[:ACTIVATION_DIGEST_CHARS]
        if digest in self.activations_seen:
            return True
        self.activations_seen = [*self.activations_seen, digest][-ACTIVATIONS_REMEMBERED:]
        return False

    def note_use(self, at: str, kind: str) -> None:
        """A use at `at` (timestamp text, which sorts as the times do)."""
        if self.last_use_at is None or at > self.last_use_at:
            self.last_use_at = at
            self.last_use_kind = kind


_NOT_STORED = ("imsi", "shard", "case", "registration")
_STORED_FIELDS = tuple(f.name for f in fields(SimState) if f.name not in _NOT_STORED)
