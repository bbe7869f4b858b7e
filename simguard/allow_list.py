"""Adding and removing allow-list entries, for the API and `simguard
allow-list load`: the rows they write, and the SIMs whose cases must be
looked at again (sent a recheck by the caller, through its own producer)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import orjson

from schemas.pseudonym import holder_ref
from simguard.store import Store, Tx
from simguard.store import allow_list as allow_rows
from simguard.store import registrations as registration_rows
from simguard.timefmt import to_text


def add_entries(
    store: Store,
    loaded: Iterable[Mapping[str, Any]],
    hmac_secret: str,
    added_by: str,
    now: datetime,
) -> tuple[list[dict[str, Any]], list[str]]:
    """Store entries as AllowListEntrySchema loads them; gives the stored
    entries (a holder as its holder_ref only) and the SIMs they name."""
    entries = [_entry(item, hmac_secret, added_by, now) for item in loaded]
    with store.transaction() as tx:
        allow_rows.add(tx, [tuple(e[c] for c in allow_rows.COLUMNS) for e in entries])
        sims = _sims_named(tx, entries)
    for entry in entries:
        entry["codes"] = [c for c in entry["codes"].split(",") if c]
    return entries, sims


def remove_entry(store: Store, entry_id: str, now: datetime) -> list[str] | None:
    """Removes an entry in force; the SIMs it named, or None if there was none."""
    with store.transaction() as tx:
        removed = allow_rows.remove(tx, entry_id, to_text(now))
        if removed is None:
            return None
        kind, value = removed
        return _sims_named(tx, [{"kind": kind, "value": value}])


def recheck_value(imsi: str, now: datetime) -> bytes:
    return orjson.dumps({"imsi": imsi, "check": "allow_list", "at": to_text(now)})


def _entry(
    item: Mapping[str, Any], hmac_secret: str, added_by: str, now: datetime
) -> dict[str, Any]:
    if "imsi" in item:
        kind, value = "imsi", item["imsi"]
    else:
        holder = item["holder"]
        kind = "holder"
        value = holder_ref(
            hmac_secret, holder["id_type"], holder["nationality"], holder["id_number"]
        )
    return {
        "entry_id": str(uuid.uuid4()),
        "kind": kind,
        "value": value,
        "codes": ",".join(item.get("codes") or []),
        "expires_at": to_text(item["expires_at"]),
        "note": item["note"],
        "added_by": added_by,
        "added_at": to_text(now),
    }


def _sims_named(tx: Tx, entries: Iterable[Mapping[str, Any]]) -> list[str]:
    sims: set[str] = set()
    for entry in entries:
        if entry["kind"] == "imsi":
            sims.add(entry["value"])
        else:
            sims.update(registration_rows.sims_of_holder(tx, entry["value"]))
    return sorted(sims)
