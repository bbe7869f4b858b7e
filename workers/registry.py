"""The registration registry in the store: history, current registration per
SIM, and a holder's active SIMs in the order the over-limit rule needs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from simguard.store import Tx
from simguard.store.in_lists import in_chunks
from workers.rules.registration import CurrentRegistration, RegistrationEvent, derive_current

_CURRENT_COLUMNS = (
    "event_id, holder_ref, status, verification, registered_at, holder_since, holder_since_event"
)


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
    tx.execute(
        "INSERT INTO registration_events "
        "(imsi, registered_at, event_id, holder_ref, status, verification) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            imsi,
            added.registered_at,
            added.event_id,
            added.holder_ref,
            added.status,
            added.verification,
        ),
    )
    # A SIM without a registrations row has no history either (both are written
    # together, here and by the import): its history is this one event.
    history = _history(tx, imsi) if previous is not None else [added]
    current = derive_current(history)
    assert current is not None
    if current.event_id == str(event["event_id"]):
        tx.execute(
            "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
            "holder_nationality, verification, status, registered_at, holder_since, "
            "holder_since_event) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (imsi) DO UPDATE SET event_id = excluded.event_id, "
            "operator = excluded.operator, iccid = excluded.iccid, msisdn = excluded.msisdn, "
            "holder_ref = excluded.holder_ref, holder_nationality = excluded.holder_nationality, "
            "verification = excluded.verification, status = excluded.status, "
            "registered_at = excluded.registered_at, holder_since = excluded.holder_since, "
            "holder_since_event = excluded.holder_since_event",
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
        tx.execute(
            "UPDATE registrations SET holder_since = ?, holder_since_event = ? WHERE imsi = ?",
            (current.holder_since, current.holder_since_event, imsi),
        )
        stored = replace(
            stored,
            holder_since=current.holder_since,
            holder_since_event=current.holder_since_event,
        )
    return current, stored


def _history(tx: Tx, imsi: str) -> list[RegistrationEvent]:
    return [
        RegistrationEvent(*row)
        for row in tx.fetchall(
            "SELECT registered_at, event_id, holder_ref, status, verification "
            "FROM registration_events WHERE imsi = ?",
            (imsi,),
        )
    ]


def current_registrations(tx: Tx, imsis: Sequence[str]) -> dict[str, CurrentRegistration]:
    """The current registration of each SIM, one query per 500; unregistered ones are absent."""
    found: dict[str, CurrentRegistration] = {}
    for chunk, placeholders in in_chunks(imsis):
        for imsi, *row in tx.fetchall(
            f"SELECT imsi, {_CURRENT_COLUMNS} FROM registrations WHERE imsi IN ({placeholders})",
            chunk,
        ):
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
    rows = tx.fetchall(
        "SELECT imsi, holder_since, holder_since_event FROM registrations "
        "WHERE holder_ref = ? AND status = 'active'",
        (holder_ref,),
    )
    return {row[0]: (row[1], row[2]) for row in rows}


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
    row = tx.fetchone("SELECT shard FROM sims WHERE imsi = ?", (imsi,))
    return None if row is None else int(row[0])
