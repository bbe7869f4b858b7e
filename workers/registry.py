"""The registration registry in the store: history, current registration per
SIM, and a holder's active SIMs in the order the over-limit rule needs."""

from __future__ import annotations

from typing import Any

from simguard.store import Tx
from simguard.timefmt import to_text
from workers.rules.registration import CurrentRegistration, RegistrationEvent, derive_current

_CURRENT_COLUMNS = (
    "event_id, holder_ref, status, verification, registered_at, holder_since, holder_since_event"
)


def record_registration(
    tx: Tx, event: dict[str, Any]
) -> tuple[CurrentRegistration | None, CurrentRegistration | None]:
    """Add one registration event; returns the SIM's (previous, new) current registration."""
    imsi = event["imsi"]
    previous = current_registration(tx, imsi)
    tx.execute(
        "INSERT INTO registration_events "
        "(imsi, registered_at, event_id, holder_ref, status, verification) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            imsi,
            to_text(event["registered_at"]),
            str(event["event_id"]),
            event["holder_ref"],
            event["status"],
            event["verification"],
        ),
    )
    history = [
        RegistrationEvent(*row)
        for row in tx.fetchall(
            "SELECT registered_at, event_id, holder_ref, status, verification "
            "FROM registration_events WHERE imsi = ?",
            (imsi,),
        )
    ]
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
    elif previous is not None and previous.holder_since != current.holder_since:
        # A late event older than the current one can still move when the SIM's
        # registration to its holder began.
        tx.execute(
            "UPDATE registrations SET holder_since = ?, holder_since_event = ? WHERE imsi = ?",
            (current.holder_since, current.holder_since_event, imsi),
        )
    return previous, current


def current_registration(tx: Tx, imsi: str) -> CurrentRegistration | None:
    row = tx.fetchone(f"SELECT {_CURRENT_COLUMNS} FROM registrations WHERE imsi = ?", (imsi,))
    if row is None:
        return None
    revoked_since = None
    if row[2] != "active":
        history = [
            RegistrationEvent(*r)
            for r in tx.fetchall(
                "SELECT registered_at, event_id, holder_ref, status, verification "
                "FROM registration_events WHERE imsi = ?",
                (imsi,),
            )
        ]
        derived = derive_current(history)
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


def holder_ranking(tx: Tx, holder_ref: str) -> list[str]:
    """The holder's SIMs with an active registration, by when each began with the holder."""
    rows = tx.fetchall(
        "SELECT imsi FROM registrations WHERE holder_ref = ? AND status = 'active' "
        "ORDER BY holder_since, holder_since_event, imsi",
        (holder_ref,),
    )
    return [row[0] for row in rows]


def shard_of(tx: Tx, imsi: str) -> int | None:
    row = tx.fetchone("SELECT shard FROM sims WHERE imsi = ?", (imsi,))
    return None if row is None else int(row[0])
