"""The registration rules: UNREGISTERED, IDENTITY_OVER_LIMIT, REGISTRATION_REVOKED.

Pure functions of a SIM's registration history, its last use and the rules
configuration. The worker reads the history from the store and writes back what
these functions decide.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from schemas.reason_codes import ReasonCode
from simguard.settings import Rules
from simguard.timefmt import from_text, to_text
from workers.state import Reason

UNREGISTERED = ReasonCode.UNREGISTERED.value
IDENTITY_OVER_LIMIT = ReasonCode.IDENTITY_OVER_LIMIT.value
REGISTRATION_REVOKED = ReasonCode.REGISTRATION_REVOKED.value


@dataclass(frozen=True)
class RegistrationEvent:
    """One registration event as the rules need it (times as fixed-width text)."""

    registered_at: str
    event_id: str
    holder_ref: str
    status: str
    verification: str


@dataclass(frozen=True)
class CurrentRegistration:
    event_id: str
    holder_ref: str
    status: str
    verification: str
    registered_at: str
    # When this SIM's registration to this holder began: status changes keep
    # it, a SIM that left the holder and came back starts again.
    holder_since: str
    holder_since_event: str
    # When the registration last turned suspended/deregistered (None if active).
    revoked_since: str | None
    # The SIM's operator and its holder's nationality, as the `registrations`
    # row has them (empty while only the history is known).
    operator: str = ""
    holder_nationality: str = ""

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def verified_active(self) -> bool:
        return self.active and self.verification != "none"


def derive_current(history: Sequence[RegistrationEvent]) -> CurrentRegistration | None:
    """The latest event by (registered_at, event_id) wins; arrival order does not matter."""
    if not history:
        return None
    ordered = sorted(history, key=lambda e: (e.registered_at, e.event_id))
    latest = ordered[-1]
    holder_start = latest
    for event in reversed(ordered):
        if event.holder_ref != latest.holder_ref:
            break
        holder_start = event
    revoked_since = None
    if latest.status != "active":
        for event in reversed(ordered):
            if event.status == "active":
                break
            revoked_since = event.registered_at
    return CurrentRegistration(
        event_id=latest.event_id,
        holder_ref=latest.holder_ref,
        status=latest.status,
        verification=latest.verification,
        registered_at=latest.registered_at,
        holder_since=holder_start.registered_at,
        holder_since_event=holder_start.event_id,
        revoked_since=revoked_since,
    )


def unregistered_deadline(activated_at: datetime, received_at: datetime, rules: Rules) -> datetime:
    """Judged once at max(activated_at, received) + grace: a backfill does not
    flood the regulator before its registrations arrive."""
    return max(activated_at, received_at) + timedelta(seconds=rules.unregistered_grace_seconds)


def judge_unregistered(
    current: CurrentRegistration | None,
    activation: dict[str, Any],
    deadline: datetime,
) -> Reason | None:
    """At the deadline: flag unless an active, verified registration is applied."""
    if current is not None and current.verified_active:
        return None
    evidence = {
        "activation_event_id": activation["event_id"],
        "activated_at": activation["activated_at"],
        "deadline": to_text(deadline),
        "registration": ("none" if current is None else f"{current.status}/{current.verification}"),
    }
    return Reason(UNREGISTERED, deadline, evidence)


def revoked_reason(
    current: CurrentRegistration | None, last_use_at: str | None, last_use_kind: str | None
) -> Reason | None:
    """A use (activation or observation) later than the registration turned
    suspended or deregistered; clears when the registration is active again."""
    if current is None or current.revoked_since is None or last_use_at is None:
        return None
    if last_use_at <= current.revoked_since:
        return None
    evidence = {
        "status": current.status,
        "revoked_at": current.revoked_since,
        "used_at": last_use_at,
        "use": last_use_kind,
    }
    return Reason(REGISTRATION_REVOKED, from_text(last_use_at), evidence)


@dataclass(frozen=True)
class HolderSim:
    """One of a holder's SIMs with an active registration, as the caps count it."""

    imsi: str
    operator: str
    holder_nationality: str


def operator_limit(rules: Rules, holder_nationality: str) -> int:
    """How many active SIMs a holder may have with one operator (0: no such cap)."""
    if holder_nationality and holder_nationality != rules.home_country:
        return rules.identity_sim_limit_per_operator_foreign
    return rules.identity_sim_limit_per_operator


def over_limit_sims(ranking: Sequence[HolderSim], rules: Rules) -> set[str]:
    """Those of a holder's SIMs (in the order they began with the holder) past
    a cap: across operators, or with their own operator."""
    beyond = {sim.imsi for sim in ranking[rules.identity_sim_limit :]}
    return beyond | {sim.imsi for sim in ranking if _operator_standing(sim, ranking, rules)}


def _operator_standing(
    sim: HolderSim, ranking: Sequence[HolderSim], rules: Rules
) -> tuple[int, int, int] | None:
    """(position with its operator, the holder's SIMs there, the cap) when past it."""
    limit = operator_limit(rules, sim.holder_nationality)
    if limit <= 0:
        return None
    same = [other.imsi for other in ranking if other.operator == sim.operator]
    position = same.index(sim.imsi) + 1
    return (position, len(same), limit) if position > limit else None


def over_limit_reason(
    imsi: str,
    current: CurrentRegistration | None,
    ranking: Sequence[HolderSim],
    rules: Rules,
) -> Reason | None:
    """`ranking` lists the holder's SIMs with an active registration, ordered by
    when each SIM's registration to the holder began; those past the limit
    across operators carry it, and so do those past the cap of their own
    operator (lower for a foreign holder). The evidence names the cap broken,
    the cross-operator one first."""
    position = next((i for i, sim in enumerate(ranking, 1) if sim.imsi == imsi), None)
    if current is None or not current.active or position is None:
        return None
    evidence: dict[str, Any] = {"holder_ref": current.holder_ref}
    if position > rules.identity_sim_limit:
        evidence |= {
            "scope": "all_operators",
            "active_registrations": len(ranking),
            "limit": rules.identity_sim_limit,
            "position": position,
        }
    else:
        standing = _operator_standing(ranking[position - 1], ranking, rules)
        if standing is None:
            return None
        with_operator, there, limit = standing
        evidence |= {
            "scope": "operator",
            "operator": ranking[position - 1].operator,
            "holder_nationality": ranking[position - 1].holder_nationality,
            "active_registrations": there,
            "limit": limit,
            "position": with_operator,
        }
    evidence["registered_to_holder_since"] = current.holder_since
    return Reason(IDENTITY_OVER_LIMIT, from_text(current.holder_since), evidence)


def weights(rules: Rules) -> dict[str, int]:
    return {
        UNREGISTERED: rules.unregistered_weight,
        IDENTITY_OVER_LIMIT: rules.identity_over_limit_weight,
        REGISTRATION_REVOKED: rules.registration_revoked_weight,
    }
