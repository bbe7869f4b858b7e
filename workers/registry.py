"""The registration registry in the store: history, current registration per
SIM, and a holder's active SIMs in the order the over-limit rule needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from simguard.store import Tx, sims
from simguard.store import registrations as rows
from workers.rules.registration import (
    CurrentRegistration,
    HolderSim,
    RegistrationEvent,
    derive_current,
)


def holder_lock(holder_ref: str) -> str:
    """The store lock that serialises work on one holder's SIMs across workers."""
    return f"simguard.holder.{holder_ref}"


class RegistrationRows(Protocol):
    """The registration tables as one batch reads and changes them
    (workers/batch_unit.py): reads see the batch's own writes."""

    def history(self, imsi: str) -> list[RegistrationEvent]: ...
    def add_event(self, imsi: str, event: RegistrationEvent) -> None: ...
    def set_current(self, row: tuple[Any, ...]) -> None: ...
    def move_since(self, imsi: str, current: CurrentRegistration) -> None: ...


def record_registration(
    tables: RegistrationRows,
    event: dict[str, Any],
    previous: CurrentRegistration | None,
    registered_at: str,
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
    tables.add_event(imsi, added)
    # A SIM without a registrations row has no history either (both are written
    # together, here and by the import): its history is this one event.
    history = tables.history(imsi) if previous is not None else [added]
    derived = derive_current(history)
    assert derived is not None
    current = replace(
        derived,
        operator=event["operator"],
        holder_nationality=(
            event["holder_nationality"]
            if derived.event_id == str(event["event_id"]) or previous is None
            else previous.holder_nationality
        ),
    )
    if current.event_id == str(event["event_id"]):
        tables.set_current(
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
                current.revoked_since,
            ),
        )
        return current, current
    if previous is None:
        return current, None
    # A late event older than the current one can still move when the SIM's
    # registration to its holder began, and since when it has been revoked.
    stored = replace(
        previous,
        holder_since=current.holder_since,
        holder_since_event=current.holder_since_event,
        revoked_since=current.revoked_since,
    )
    if stored != previous:
        tables.move_since(imsi, current)
    return current, stored


def current_registrations(tx: Tx, imsis: Sequence[str]) -> dict[str, CurrentRegistration]:
    """The current registration of each SIM, one query per 500; unregistered ones are absent."""
    return {imsi: from_row(row) for imsi, *row in rows.current_rows(tx, imsis)}


def from_row(row: Sequence[Any]) -> CurrentRegistration:
    """A registration from its `registrations` columns (rows.CURRENT_COLUMNS)."""
    return CurrentRegistration(*row)


# A holder's active SIMs: imsi -> (holder_since, holder_since_event, operator,
# holder_nationality).
HolderMembers = dict[str, tuple[str, str, str, str]]


def members_of(tx: Tx, holders: Sequence[str]) -> dict[str, HolderMembers]:
    """Each of `holders`' active SIMs, one query per 500 holders."""
    found: dict[str, HolderMembers] = {holder: {} for holder in holders}
    for holder, imsi, since, event, operator, nationality in rows.active_of_holders(tx, holders):
        found[holder][imsi] = (since, event, operator, nationality)
    return found


def ranking(members: HolderMembers) -> list[HolderSim]:
    """Members by when each began with the holder (then event, then IMSI: a total order)."""
    ordered = sorted(members, key=lambda imsi: (members[imsi][0], members[imsi][1], imsi))
    return [HolderSim(imsi, members[imsi][2], members[imsi][3]) for imsi in ordered]


def with_stored(
    members: HolderMembers, holder_ref: str, stored: CurrentRegistration | None, imsi: str
) -> HolderMembers:
    """`members` of `holder_ref` once `imsi`'s registrations row holds `stored`."""
    after = {other: since for other, since in members.items() if other != imsi}
    if stored is not None and stored.active and stored.holder_ref == holder_ref:
        after[imsi] = (
            stored.holder_since,
            stored.holder_since_event,
            stored.operator,
            stored.holder_nationality,
        )
    return after


def holder_ranking(tx: Tx, holder_ref: str) -> list[HolderSim]:
    """The holder's SIMs with an active registration, by when each began with the holder."""
    return ranking(members_of(tx, [holder_ref])[holder_ref])


def shard_of(tx: Tx, imsi: str) -> int | None:
    return sims.shard_of(tx, imsi)
