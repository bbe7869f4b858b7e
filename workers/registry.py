"""The registration registry in the store: history, current registration per
SIM, and a holder's active SIMs in the order the over-limit rule needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from simguard.store import Tx, sims
from simguard.store import registrations as rows
from workers.rules.registration import CurrentRegistration, RegistrationEvent, derive_current


def holder_lock(holder_ref: str) -> str:
    """The store lock that serialises work on one holder's SIMs across workers."""
    return f"simguard.holder.{holder_ref}"


def record_registration(
    tx: Tx, event: dict[str, Any], previous: CurrentRegistration | None, registered_at: str
) -> tuple[CurrentRegistration, CurrentRegistration | None]:
    """Add one registration event to a SIM whose stored registration is
    `previous`; `registered_at` is the event's time as text.

    Returns (current, stored): the registration the SIM's whole history now
    gives, and what its `registrations` row holds afterwards (the same, except
    when a late event older than the current one only moves `holder_since`;
    None when the SIM has no row and the event is not its latest).
    """
    imsi = event["imsi"]
    added = RegistrationEvent(
        registered_at=registered_at,
        event_id=str(event["event_id"]),
        holder_ref=event["holder_ref"],
        status=event["status"],
        verification=event["verification"],
    )
    rows.add_event(
        tx,
        imsi,
        (added.registered_at, added.event_id, added.holder_ref, added.status, added.verification),
    )
    # A SIM without a registrations row has no history either (both are written
    # together, here and by the import): its history is this one event.
    history = _history(tx, imsi) if previous is not None else [added]
    current = derive_current(history)
    assert current is not None
    if current.event_id == str(event["event_id"]):
        rows.set_current(
            tx,
            (
                imsi,
                current.event_id,
                event["operator"],
                event["iccid"],
                event["msisdn"],
                current.holder_ref,
                event["holder_nationality"],
                current.verification,
                current.status,
                current.registered_at,
                current.holder_since,
                current.holder_since_event,
            ),
        )
        return current, current
    if previous is None:
        return current, None
    stored = replace(previous, revoked_since=current.revoked_since)
    if previous.holder_since != current.holder_since:
        # A late event older than the current one can still move when the SIM's
        # registration to its holder began.
        rows.move_holder_since(tx, imsi, current.holder_since, current.holder_since_event)
        stored = replace(
            stored,
            holder_since=current.holder_since,
            holder_since_event=current.holder_since_event,
        )
    return current, stored


def _history(tx: Tx, imsi: str) -> list[RegistrationEvent]:
    return [RegistrationEvent(*row) for row in rows.history(tx, imsi)]


def current_registrations(tx: Tx, imsis: Sequence[str]) -> dict[str, CurrentRegistration]:
    """The current registration of each SIM, one query per 500; unregistered ones are absent."""
    found: dict[str, CurrentRegistration] = {}
    for imsi, *row in rows.current_rows(tx, imsis):
        found[imsi] = _from_row(tx, imsi, tuple(row))
    return found


def _from_row(tx: Tx, imsi: str, row: tuple[Any, ...]) -> CurrentRegistration:
    revoked_since = None
    if row[2] != "active":
        derived = derive_current(_history(tx, imsi))
        revoked_since = derived.revoked_since if derived else None
    return CurrentRegistration(
        event_id=row[0],
        holder_ref=row[1],
        status=row[2],
        verification=row[3],
        registered_at=row[4],
        holder_since=row[5],
        holder_since_event=row[6],
        revoked_since=revoked_since,
    )


# A holder's active SIMs: imsi -> (holder_since, holder_since_event).
HolderMembers = dict[str, tuple[str, str]]


def holder_members(tx: Tx, holder_ref: str) -> HolderMembers:
    return {imsi: (since, event) for imsi, since, event in rows.active_of_holder(tx, holder_ref)}


def ranking(members: HolderMembers) -> list[str]:
    """Members by when each began with the holder (then event, then IMSI: a total order)."""
    return sorted(members, key=lambda imsi: (*members[imsi], imsi))


def with_stored(
    members: HolderMembers, holder_ref: str, stored: CurrentRegistration | None, imsi: str
) -> HolderMembers:
    """`members` of `holder_ref` once `imsi`'s registrations row holds `stored`."""
    after = {other: since for other, since in members.items() if other != imsi}
    if stored is not None and stored.active and stored.holder_ref == holder_ref:
        after[imsi] = (stored.holder_since, stored.holder_since_event)
    return after


def holder_ranking(tx: Tx, holder_ref: str) -> list[str]:
    """The holder's SIMs with an active registration, by when each began with the holder."""
    return ranking(holder_members(tx, holder_ref))


def shard_of(tx: Tx, imsi: str) -> int | None:
    return sims.shard_of(tx, imsi)
