"""Regulators' decisions on a SIM's case, as the worker applies them: pure.

A dismissal tells simguard that the evidence behind some of a case's reasons
was a false positive (a border trader, a diplomat). What the worker keeps of
it, per dismissed code, is the reason's `since` as the rule gave it when the
dismissal was applied, and the dismissal's expiry. Until then, that code is
left out of the case while the rule's reason is the same occurrence: a
`since` no later than the dismissed one. A new occurrence has a later
`since` (the pattern cleared and was met again, a new activation left
unregistered, a new use of a revoked SIM), and flags the SIM again; so does
any other reason. At the expiry the dismissal lapses and a reason that still
holds is raised again.

Confirmations and escalations change no reason: they are recorded on the
case (its `decision` member) and in the audit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.case_decision import APPLIED, DISMISS, NOTHING_TO_DISMISS, STALE_CASE_VERSION
from simguard.timefmt import from_text, to_text
from workers.state import Reason

# code -> {"since": the dismissed occurrence's since, "until": expiry, "decision_id"}
Dismissals = dict[str, dict[str, str]]


@dataclass(frozen=True)
class Decision:
    decision_id: str
    imsi: str
    action: str
    case_version: int
    reason: str | None
    codes: tuple[str, ...]
    expires_at: datetime | None
    decided_by: str
    decided_at: datetime

    @staticmethod
    def from_wire(loaded: Mapping[str, Any]) -> Decision:
        """From the decision as CaseDecisionSchema loads it."""
        return Decision(
            decision_id=loaded["decision_id"],
            imsi=loaded["imsi"],
            action=loaded["action"],
            case_version=loaded["case_version"],
            reason=loaded["reason"],
            codes=tuple(loaded["codes"]),
            expires_at=loaded["expires_at"],
            decided_by=loaded["decided_by"],
            decided_at=loaded["decided_at"],
        )

    def to_json(self) -> dict[str, Any]:
        """The decision as the case record's `decision` member and the audit carry it."""
        return {
            "decision_id": self.decision_id,
            "action": self.action,
            "case_version": self.case_version,
            "reason": self.reason,
            "codes": list(self.codes),
            "expires_at": None if self.expires_at is None else to_text(self.expires_at),
            "decided_by": self.decided_by,
            "decided_at": to_text(self.decided_at),
        }


def judge(
    case: Mapping[str, Any] | None, decision: Decision, reasons_now: Mapping[str, Reason]
) -> tuple[str, Dismissals]:
    """What applying `decision` to the SIM whose last record is `case` comes
    to: its outcome and, for an applied dismissal, the dismissals it adds.
    `reasons_now` are the reasons the rules hold at this moment."""
    if case is None or case.get("version") != decision.case_version:
        return STALE_CASE_VERSION, {}
    if decision.action != DISMISS:
        return APPLIED, {}
    active = {r["code"]: r for r in case.get("reasons") or []}
    codes = decision.codes or tuple(active)
    if not codes or any(code not in active for code in codes):
        return NOTHING_TO_DISMISS, {}
    assert decision.expires_at is not None
    added: Dismissals = {}
    for code in codes:
        # The case keeps a reason's first `since`; the rule may give a later one
        # for what is still the occurrence the regulator saw (a revoked SIM's
        # latest use): the later of the two is covered.
        since = active[code]["since"]
        now = reasons_now.get(code)
        if now is not None and to_text(now.since) > since:
            since = to_text(now.since)
        added[code] = {
            "since": since,
            "until": to_text(decision.expires_at),
            "decision_id": decision.decision_id,
        }
    return APPLIED, added


def in_force(dismissals: Dismissals, now: datetime) -> Dismissals:
    """The dismissals that have not expired at `now`."""
    moment = to_text(now)
    return {code: d for code, d in dismissals.items() if d["until"] > moment}


def covers(dismissals: Dismissals, reason: Reason, now: datetime) -> bool:
    """Whether a dismissal in force covers this occurrence of its code."""
    dismissal = dismissals.get(reason.code)
    return (
        dismissal is not None
        and dismissal["until"] > to_text(now)
        and to_text(reason.since) <= dismissal["since"]
    )


def without_dismissed(
    reasons: Mapping[str, Reason], dismissals: Dismissals, now: datetime
) -> dict[str, Reason]:
    if not dismissals:
        return dict(reasons)
    return {code: r for code, r in reasons.items() if not covers(dismissals, r, now)}


def next_expiry(dismissals: Dismissals, now: datetime) -> datetime | None:
    """When the next dismissal in force lapses (the case is looked at again then)."""
    upcoming = [d["until"] for d in in_force(dismissals, now).values()]
    return from_text(min(upcoming)) if upcoming else None
