"""A SIM's case: from the reasons its rules hold now to the next case record.

A new record (version + 1) is made only when the set of active reason codes
changes or a regulator's decision is applied, so a re-evaluation that changes
nothing publishes nothing; a reason that stays keeps its first `since` and
evidence, and the latest decision stays on every later record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.case_record import SCHEMA_VERSION, record_id_for
from simguard.timefmt import to_text
from workers.state import Reason, SimState


@dataclass(frozen=True)
class CaseChange:
    record: dict[str, Any]
    raised: tuple[str, ...]
    cleared: tuple[str, ...]


def risk_score(codes: Mapping[str, Any], weights: Mapping[str, int]) -> int:
    return min(100, sum(weights[code] for code in codes))


def next_case(
    state: SimState,
    reasons: Mapping[str, Reason],
    weights: Mapping[str, int],
    rules_version: str,
    now: datetime,
    decision: dict[str, Any] | None = None,
) -> CaseChange | None:
    """The record to publish for `state` given the reasons that hold now and
    the decision just applied to it (if any), or None."""
    previous = state.case
    previous_reasons = {r["code"]: r for r in previous["reasons"]} if previous else {}
    if decision is None and set(previous_reasons) == set(reasons):
        return None
    if previous is None and not reasons:
        return None
    merged = []
    for code in sorted(reasons):
        kept = previous_reasons.get(code)
        merged.append(kept if kept is not None else _reason_json(reasons[code]))
    version = (previous["version"] if previous else 0) + 1
    flagged = bool(reasons)
    first_flagged_at = previous["first_flagged_at"] if previous else None
    if flagged and first_flagged_at is None:
        first_flagged_at = to_text(now)
    record = {
        "record_id": record_id_for(state.imsi, version),
        "imsi": state.imsi,
        "iccid": state.iccid,
        "msisdn": state.msisdn,
        "operator": state.operator,
        "status": "flagged" if flagged else "cleared",
        "version": version,
        "risk_score": risk_score(reasons, weights),
        "reasons": merged,
        "first_flagged_at": first_flagged_at,
        "updated_at": to_text(now),
        "rules_version": rules_version,
        "schema_version": SCHEMA_VERSION,
        "decision": decision if decision is not None else (previous or {}).get("decision"),
    }
    raised = tuple(sorted(set(reasons) - set(previous_reasons)))
    cleared = tuple(sorted(set(previous_reasons) - set(reasons)))
    return CaseChange(record, raised, cleared)


def _reason_json(reason: Reason) -> dict[str, Any]:
    return reason.to_json()
