"""Operator notices: what a flag asks of the SIM's operator, and whether it
was done in time. Pure; the worker keeps a SIM's notice in its state and
publishes each new version of it.

A case change that raises a reason with an action (the rules file's
`notice_actions`) issues a notice: `suspend` if any of the case's reasons asks
for it, else `reverify`, due `notice_deadline_hours` (or the reason's own)
after the change. A SIM has one notice at a time: a further reason while it
is open makes a new version of it, with the stronger action and the earlier
deadline (a promise already made does not move). It closes as `actioned` when
the SIM's registration shows the action done (suspended or deregistered for
either action; re-verified, a verified active registration newer than the
notice, for `reverify`), as `withdrawn` when the case clears (the rules, or a
regulator's dismissal), and turns `overdue` at its deadline on the worker's
clock, which it stays until one of those closes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Final

from schemas.notice import NOTICE_ACTIONS, NOTICE_STATUSES
from simguard.settings import Rules
from simguard.timefmt import from_text, to_text
from workers.rules.registration import CurrentRegistration

SUSPEND, REVERIFY = NOTICE_ACTIONS
OPEN, OVERDUE, ACTIONED, WITHDRAWN = NOTICE_STATUSES
PENDING: Final = (OPEN, OVERDUE)

# uuid5(NAMESPACE_URL, "urn:simguard:operator-notice"). Never change it:
# operators deduplicate on the notice ids derived from it.
NOTICE_ID_NAMESPACE: Final = uuid.UUID("8c0c9a9e-55a3-5f73-9d5b-3d8c1f6b2a41")

Notice = dict[str, Any]


def notice_id_for(imsi: str, case_version: int) -> str:
    """The id of the notice first issued for version `case_version` of the SIM's case."""
    return str(uuid.uuid5(NOTICE_ID_NAMESPACE, f"{imsi}:{case_version}"))


def pending(notice: Notice | None) -> bool:
    return notice is not None and notice["status"] in PENDING


def after_case_change(
    notice: Notice | None,
    record: Mapping[str, Any],
    raised: Sequence[str],
    rules: Rules,
    now: datetime,
) -> Notice | None:
    """The notice's next version after the case became `record`, having
    raised `raised`; None when the notice stays as it is."""
    if record["status"] == "cleared":
        return _closed(notice, WITHDRAWN, now, "case_cleared") if pending(notice) else None
    asking = [code for code in raised if code in rules.notice_actions]
    if not asking:
        return None
    active = [r["code"] for r in record["reasons"] if r["code"] in rules.notice_actions]
    action = SUSPEND if any(rules.notice_actions[c] == SUSPEND for c in active) else REVERIFY
    deadline = to_text(now + min(_deadline_after(code, rules) for code in asking))
    if pending(notice):
        assert notice is not None
        if notice["action"] == SUSPEND:
            action = SUSPEND
        deadline = min(deadline, notice["deadline"])
        return {
            **notice,
            "action": action,
            "reasons": active,
            "deadline": deadline,
            "case_version": record["version"],
            "notice_version": notice["notice_version"] + 1,
            "updated_at": to_text(now),
        }
    return {
        "notice_id": notice_id_for(record["imsi"], record["version"]),
        "imsi": record["imsi"],
        "operator": record["operator"],
        "action": action,
        "reasons": active,
        "case_version": record["version"],
        "issued_at": to_text(now),
        "deadline": deadline,
        "status": OPEN,
        "notice_version": 1,
        "updated_at": to_text(now),
        "actioned_at": None,
        "closed_by": None,
        "on_time": None,
    }


def after_registration(
    notice: Notice | None, current: CurrentRegistration | None, now: datetime
) -> Notice | None:
    """The notice closed as actioned, if the SIM's registration now shows its
    action done; None otherwise."""
    if not pending(notice) or current is None:
        return None
    assert notice is not None
    if not current.active:
        # Suspended before the notice was even issued counts as done at once.
        done_at = max(current.registered_at, notice["issued_at"])
        return _closed(notice, ACTIONED, now, "suspension", at=done_at)
    if (
        notice["action"] == REVERIFY
        and current.verified_active
        and current.registered_at > notice["issued_at"]
    ):
        return _closed(notice, ACTIONED, now, "reverification", at=current.registered_at)
    return None


def at_deadline(notice: Notice | None, now: datetime) -> Notice | None:
    """The notice turned overdue, if it is still open at `now` past its deadline."""
    if notice is None or notice["status"] != OPEN or notice["deadline"] > to_text(now):
        return None
    return {
        **notice,
        "status": OVERDUE,
        "notice_version": notice["notice_version"] + 1,
        "updated_at": to_text(now),
    }


def seconds_to_action(notice: Notice) -> float | None:
    """From issue to the action, for a notice closed as actioned."""
    if notice["status"] != ACTIONED or notice["actioned_at"] is None:
        return None
    return (from_text(notice["actioned_at"]) - from_text(notice["issued_at"])).total_seconds()


def _deadline_after(code: str, rules: Rules) -> timedelta:
    hours = rules.notice_deadline_hours_by_reason.get(code, rules.notice_deadline_hours)
    return timedelta(hours=hours)


def _closed(
    notice: Notice | None, status: str, now: datetime, closed_by: str, at: str | None = None
) -> Notice:
    assert notice is not None
    return {
        **notice,
        "status": status,
        "notice_version": notice["notice_version"] + 1,
        "updated_at": to_text(now),
        "actioned_at": at if status == ACTIONED else None,
        "closed_by": closed_by,
        # Whether the action came by the deadline: what compliance is judged on.
        "on_time": None if at is None else at <= notice["deadline"],
    }
