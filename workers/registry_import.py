"""`simguard registry import FILE.csv`: bulk-load an operator's existing
registrations straight into the store.

Columns: imsi, iccid, msisdn, operator, id_type, id_number, nationality,
verification, registered_at, status (event_id optional). Every row is checked
like an API registration (the same schemas), the identity number is replaced by
the holder reference at once and never stored, rows are validated on every core
and written in large transactions. A row that fails is counted with its line
number and reason, never with its content.

SIMs the worker already knows, and SIMs beyond a holder's limit, are sent a
recheck so that their worker refreshes their registration and case: the
worker stays the only writer of a SIM's case.
"""

from __future__ import annotations

import csv
import multiprocessing
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from marshmallow import ValidationError
from tqdm import tqdm

from schemas.events import RegistrationRequestSchema
from schemas.pseudonym import holder_ref
from simguard.kafka_clients import reliable_producer
from simguard.settings import Settings
from simguard.store import Tx, open_store
from simguard.timefmt import to_text
from workers.registry import holder_ranking

CHUNK_ROWS = 5_000
IMPORT_NAMESPACE = uuid.UUID("6f3f0a52-8d7e-4b6e-9a57-1d8c3c2b9e10")
COLUMNS = (
    "imsi", "iccid", "msisdn", "operator", "id_type", "id_number", "nationality",
    "verification", "registered_at", "status",
)  # fmt: skip


@dataclass
class ImportSummary:
    imported: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    first_rejected_lines: list[int] = field(default_factory=list)
    rechecks: int = 0

    def describe(self) -> str:
        lines = [f"imported {self.imported} registrations, rejected {self.rejected}"]
        for reason, count in self.reasons.most_common(10):
            lines.append(f"  {count:>9}  {reason}")
        if self.first_rejected_lines:
            lines.append(
                f"  first rejected lines: {', '.join(map(str, self.first_rejected_lines))}"
            )
        if self.rechecks:
            lines.append(f"  sent {self.rechecks} SIMs to their workers for a recheck")
        return "\n".join(lines)


Row = tuple[str, str, str, str, str, str, str, str, str, str, str]


def _validate_chunk(
    args: tuple[str, int, list[dict[str, str]]],
) -> tuple[list[Row], list[tuple[int, str]]]:
    secret, first_line, rows = args
    schema = RegistrationRequestSchema()
    good: list[Row] = []
    bad: list[tuple[int, str]] = []
    for offset, row in enumerate(rows):
        line = first_line + offset
        try:
            event = schema.load(_request_body(row))
        except ValidationError as error:
            bad.append((line, _reason(error.messages)))
            continue
        except (KeyError, TypeError):
            bad.append((line, "missing column"))
            continue
        holder = event["holder"]
        registered_at = to_text(event["registered_at"])
        good.append(
            (
                event["imsi"],
                str(event["event_id"]),
                event["operator"],
                event["iccid"],
                event["msisdn"],
                holder_ref(secret, holder["id_type"], holder["nationality"], holder["id_number"]),
                holder["nationality"],
                event["verification"],
                event["status"],
                registered_at,
                registered_at,
            )
        )
    return good, bad


def _request_body(row: dict[str, str]) -> dict[str, Any]:
    event_id = row.get("event_id") or str(
        uuid.uuid5(IMPORT_NAMESPACE, f"{row['imsi']}|{row['registered_at']}|{row['status']}")
    )
    return {
        "event_id": event_id,
        "operator": row["operator"],
        "imsi": row["imsi"],
        "iccid": row["iccid"],
        "msisdn": row["msisdn"],
        "holder": {
            "id_type": row["id_type"],
            "id_number": row["id_number"],
            "nationality": row["nationality"],
        },
        "verification": row["verification"],
        "registered_at": row["registered_at"],
        "status": row["status"],
    }


def _reason(messages: Any, prefix: str = "") -> str:
    # Field names only: the offending values may be identity numbers.
    if isinstance(messages, dict):
        key, value = next(iter(messages.items()))
        return _reason(value, f"{prefix}/{key}" if key != "_schema" else prefix)
    return f"invalid {prefix.lstrip('/') or 'row'}"


def _chunks(path: Path, secret: str) -> Iterator[tuple[str, int, list[dict[str, str]]]]:
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
        chunk: list[dict[str, str]] = []
        first_line = 2
        for row in reader:
            chunk.append(row)
            if len(chunk) == CHUNK_ROWS:
                yield secret, first_line, chunk
                first_line += len(chunk)
                chunk = []
        if chunk:
            yield secret, first_line, chunk


_UPSERT = (
    "INSERT INTO registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
    "holder_nationality, verification, status, registered_at, holder_since, holder_since_event) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (imsi) DO UPDATE SET event_id = excluded.event_id, operator = excluded.operator, "
    "iccid = excluded.iccid, msisdn = excluded.msisdn, holder_ref = excluded.holder_ref, "
    "holder_nationality = excluded.holder_nationality, verification = excluded.verification, "
    "status = excluded.status, registered_at = excluded.registered_at, "
    "holder_since = CASE WHEN registrations.holder_ref = excluded.holder_ref "
    "THEN registrations.holder_since ELSE excluded.holder_since END, "
    "holder_since_event = CASE WHEN registrations.holder_ref = excluded.holder_ref "
    "THEN registrations.holder_since_event ELSE excluded.holder_since_event END "
    "WHERE excluded.registered_at > registrations.registered_at "
    "OR (excluded.registered_at = registrations.registered_at "
    "AND excluded.event_id > registrations.event_id)"
)


def _write(tx: Tx, rows: list[Row]) -> None:
    tx.executemany(
        "INSERT INTO registration_events (imsi, registered_at, event_id, holder_ref, status, "
        "verification) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(r[0], r[9], r[1], r[5], r[8], r[7]) for r in rows],
    )
    tx.executemany(_UPSERT, [(*r[:11], r[1]) for r in rows])


def import_csv(
    settings: Settings, path: Path, workers: int | None = None, recheck: bool = True
) -> ImportSummary:
    if not settings.hmac_secret:
        raise ValueError("an HMAC secret is needed to pseudonymise holders (SIMGUARD_HMAC_SECRET)")
    store = open_store(settings.database_url)
    summary = ImportSummary()
    touched_holders: set[str] = set()
    imported_imsis: list[str] = []
    processes = workers or max(1, (multiprocessing.cpu_count() or 1))
    with (
        multiprocessing.get_context("fork").Pool(processes) as pool,
        tqdm(unit=" rows", desc="importing", unit_scale=True) as progress,
    ):
        for good, bad in pool.imap(_validate_chunk, _chunks(path, settings.hmac_secret)):
            with store.transaction() as tx:
                _write(tx, good)
            summary.imported += len(good)
            summary.rejected += len(bad)
            for line, reason in bad:
                summary.reasons[reason] += 1
                if len(summary.first_rejected_lines) < 10:
                    summary.first_rejected_lines.append(line)
            touched_holders.update(r[5] for r in good)
            imported_imsis.extend(r[0] for r in good)
            progress.update(len(good) + len(bad))
    if recheck:
        summary.rechecks = _send_rechecks(settings, store, touched_holders, imported_imsis)
    return summary


def _send_rechecks(settings: Settings, store: Any, holders: set[str], imsis: list[str]) -> int:
    """SIMs past a holder's limit, and SIMs whose worker already holds state."""
    wanted: dict[str, int | None] = {}
    limit = settings.rules.identity_sim_limit
    with store.transaction() as tx:
        for holder in holders:
            for imsi in holder_ranking(tx, holder)[limit:]:
                wanted[imsi] = None
        for start in range(0, len(imsis), 500):
            chunk = imsis[start : start + 500]
            placeholders = ",".join("?" for _ in chunk)
            for imsi, shard in tx.fetchall(
                f"SELECT imsi, shard FROM sims WHERE imsi IN ({placeholders})", chunk
            ):
                wanted[imsi] = int(shard)
    if not wanted:
        return 0
    producer = reliable_producer(settings)
    try:
        for imsi, shard in wanted.items():
            value = orjson.dumps({"imsi": imsi, "check": "holder"})
            producer.send(settings.topic_rechecks, key=imsi.encode(), value=value, partition=shard)
        producer.flush(timeout=60)
    finally:
        producer.close()
    return len(wanted)
