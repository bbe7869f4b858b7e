"""`simguard allow-list load FILE.csv`: a regulator's allow-list from a file.

Every row is checked with the API's schema before any is stored, so a file
with one bad row changes nothing; a holder's identity number is replaced by
its holder_ref here and goes no further. The SIMs the entries name are sent
a recheck through the internal recheck topic."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from marshmallow import ValidationError

from schemas.allow_list import AllowListEntrySchema
from simguard import allow_list
from simguard.kafka_clients import reliable_producer
from simguard.settings import Settings
from simguard.store import open_store

COLUMNS = ("imsi", "id_type", "id_number", "nationality", "codes", "expires_at", "note")
ADDED_BY = "allow-list-file"


def load_file(settings: Settings, path: Path) -> tuple[int, int]:
    """(entries added, SIMs sent a recheck); ValueError naming the first bad row."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = sorted(set(COLUMNS) - set(reader.fieldnames or ()))
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(missing)}")
        loaded = [_row(number, row) for number, row in enumerate(reader, start=2)]
    now = datetime.now(UTC)
    store = open_store(settings.database_url)
    try:
        entries, sims = allow_list.add_entries(store, loaded, settings.hmac_secret, ADDED_BY, now)
    finally:
        store.close()
    if sims:
        producer = reliable_producer(settings)
        try:
            for imsi in sims:
                producer.send(
                    settings.topic_rechecks,
                    key=imsi.encode(),
                    value=allow_list.recheck_value(imsi, now),
                )
            producer.flush(timeout=60)
        finally:
            producer.close()
    return len(entries), len(sims)


def _row(number: int, row: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "expires_at": row["expires_at"],
        "note": row["note"],
        "codes": [c.strip() for c in row["codes"].split(";") if c.strip()],
    }
    if row["imsi"].strip():
        item["imsi"] = row["imsi"].strip()
    if any(row[name].strip() for name in ("id_type", "id_number", "nationality")):
        item["holder"] = {
            name: row[name].strip() for name in ("id_type", "id_number", "nationality")
        }
    try:
        loaded: dict[str, Any] = AllowListEntrySchema().load(item)
    except ValidationError as error:
        # The messages name fields, never the values (an identity number).
        raise ValueError(f"row {number}: {error.messages}") from None
    return loaded
