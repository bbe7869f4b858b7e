"""A store of many SIMs made from what the worker wrote for a few.

Loading a million SIMs through `simguard worker` takes longer than a benchmark
may run. Instead a real worker applies the events of a template of S SIMs
(numbers 0..S-1 of bench.events), and its per-SIM rows are copied inside
SQLite: copy k holds SIMs k*S..k*S+S-1, each row of the template inserted again
(INSERT ... SELECT) with every identifier in it rewritten to the copy's SIM.
The rows are therefore exactly those the worker writes, only more of them.

What is rewritten, and how the data stays consistent:
- IMSI, ICCID, MSISDN and holder ref: to those bench.events gives the copy's
  SIM number, wherever they occur (columns, the JSON state, the case record);
  the dealer of a dealer activation likewise. S is a multiple of 400, so a
  copy keeps its template's operator, two SIMs per holder and 20 dealer SIMs
  per dealer;
- event ids (ledger, registration history, the state's registration, deadline
  refs): the first 8 hex digits become the copy number, so they stay unique
  UUIDs and the ledger never sees one twice;
- shard: the Kafka partition of the new IMSI (the producer's murmur2), which
  is where its events will arrive;
- case record ids: recomputed from the new IMSI and the version, as the worker
  derives them; notice ids renumbered by copy like event ids.
The ledger's content hashes are copied unchanged: the worker compares one only
when the same event id comes again, which copied ids never do.

Before copying, every identifier-shaped string in the template's per-SIM rows
is checked to be one of those its own SIM's rows may hold; anything else (an
identifier of another SIM in a rule's evidence, a table this module does not
know) stops the copy rather than let it write rows the worker would not.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from kafka.partitioner.default import murmur2

from bench import events
from schemas.case_record import record_id_for

# `c` is a row of temp.copy_ids (the copy's identifiers), `t` of
# temp.template_ids (the template SIM's), each joined on the template IMSI.
_NEW_EVENT_ID = "printf('%08x', c.k) || substr({0}, 9)"
_UUID_GLOB = "-".join("[0-9a-f]" * width for width in (8, 4, 4, 4, 12))


def _rewritten(column: str) -> str:
    """`column` of a template SIM's row with its identifiers those of the copy's SIM."""
    return (
        "replace(replace(replace(replace(replace("
        f"{column}, t.iccid, c.iccid), t.imsi, c.imsi), t.msisdn, c.msisdn), "
        f"t.holder_ref, c.holder_ref), t.event_id, {_NEW_EVENT_ID.format('t.event_id')})"
    )


def _with_notice_id(text: str, path: str) -> str:
    """`text` with the notice id at JSON `path` in it renumbered like an event id
    (a SIM without a notice keeps its text: replace() with NULL would erase it)."""
    notice_id = f"json_extract({text}, '{path}')"
    return (
        f"CASE WHEN {notice_id} IS NULL THEN {text} "
        f"ELSE replace({text}, {notice_id}, {_NEW_EVENT_ID.format(notice_id)}) END"
    )


_REWRITTEN_CASE = (
    f"replace({_rewritten('s.case_record')}, json_extract(s.case_record, '$.record_id'), "
    "case_record_id(c.imsi, json_extract(s.case_record, '$.version')))"
)
PER_SIM_COPIES: Final = {
    "sims": (
        "INSERT INTO main.sims (imsi, shard, case_status, case_record, state) "
        "SELECT c.imsi, c.shard, s.case_status, "
        f"CASE WHEN s.case_record IS NULL THEN NULL ELSE {_REWRITTEN_CASE} END, "
        f"{_with_notice_id(_rewritten('s.state'), '$.notice.notice_id')} "
        "FROM temp.copy_ids c JOIN template.sims s ON s.imsi = c.template_imsi "
        "JOIN temp.template_ids t ON t.imsi = c.template_imsi"
    ),
    "registrations": (
        "INSERT INTO main.registrations (imsi, event_id, operator, iccid, msisdn, holder_ref, "
        "holder_nationality, verification, status, registered_at, holder_since, "
        "holder_since_event, revoked_since) "
        f"SELECT c.imsi, {_NEW_EVENT_ID.format('r.event_id')}, r.operator, c.iccid, c.msisdn, "
        "c.holder_ref, r.holder_nationality, r.verification, r.status, r.registered_at, "
        f"r.holder_since, {_NEW_EVENT_ID.format('r.holder_since_event')}, r.revoked_since "
        "FROM temp.copy_ids c JOIN template.registrations r ON r.imsi = c.template_imsi"
    ),
    "registration_events": (
        "INSERT INTO main.registration_events (imsi, registered_at, event_id, holder_ref, "
        "status, verification) "
        f"SELECT c.imsi, e.registered_at, {_NEW_EVENT_ID.format('e.event_id')}, "
        "c.holder_ref, e.status, e.verification "
        "FROM temp.copy_ids c JOIN template.registration_events e ON e.imsi = c.template_imsi"
    ),
    # Each copy's handsets are its own: 14-digit device numbers shifted per copy.
    "device_sims": (
        "INSERT INTO main.device_sims (device, day, imsi, in_group) "
        "SELECT d.device + c.k * 100000000000000, d.day, c.imsi, d.in_group "
        "FROM temp.copy_ids c JOIN template.device_sims d ON d.imsi = c.template_imsi"
    ),
    "abnormal_usage": (
        "INSERT INTO main.abnormal_usage (imsi, day, operator, msisdn, outgoing_calls, "
        "distinct_called_numbers, distinct_cells, top_cell_share) "
        "SELECT c.imsi, a.day, a.operator, c.msisdn, a.outgoing_calls, "
        "a.distinct_called_numbers, a.distinct_cells, a.top_cell_share "
        "FROM temp.copy_ids c JOIN template.abnormal_usage a ON a.imsi = c.template_imsi"
    ),
    # The ledger keeps digests, not event ids: a copy's keys are digests of
    # the template's, one set per copy, as many and as random as real ones.
    "processed_events": (
        "INSERT INTO main.processed_events (event_key, day, content_hash) "
        "SELECT copy_event_key(c.k, p.event_key), p.day, p.content_hash "
        "FROM temp.copies c CROSS JOIN template.processed_events p"
    ),
    "dealer_activations": (
        "INSERT INTO main.dealer_activations (dealer_key, imsi, activated_at, in_burst) "
        "SELECT c.dealer_key, c.imsi, d.activated_at, d.in_burst "
        "FROM temp.copy_ids c JOIN template.dealer_activations d ON d.imsi = c.template_imsi"
    ),
    "deadlines": (
        "INSERT INTO main.deadlines (imsi, kind, ref, shard, due_at) "
        "SELECT c.imsi, d.kind, "
        # An UNREGISTERED deadline's ref is its activation's event id.
        f"CASE WHEN d.ref GLOB '{_UUID_GLOB}' THEN {_NEW_EVENT_ID.format('d.ref')} "
        "ELSE d.ref END, c.shard, d.due_at "
        "FROM temp.copy_ids c JOIN template.deadlines d ON d.imsi = c.template_imsi"
    ),
    # A notice names its SIM and its own id, renumbered by copy like event ids.
    "notices": (
        "INSERT INTO main.notices (imsi, operator, status, deadline, notice) "
        "SELECT c.imsi, n.operator, n.status, n.deadline, "
        f"{_with_notice_id('replace(n.notice, t.imsi, c.imsi)', '$.notice_id')} "
        "FROM temp.copy_ids c JOIN template.notices n ON n.imsi = c.template_imsi "
        "JOIN temp.template_ids t ON t.imsi = c.template_imsi"
    ),
    "notice_feed": (
        "INSERT INTO main.notice_feed (txid, notice_id, notice_version, imsi, operator, "
        "status, issued_at, notice) "
        f"SELECT 0, {_NEW_EVENT_ID.format('f.notice_id')}, f.notice_version, c.imsi, "
        "f.operator, f.status, f.issued_at, "
        f"{_with_notice_id('replace(f.notice, t.imsi, c.imsi)', '$.notice_id')} "
        "FROM temp.copy_ids c JOIN template.notice_feed f ON f.imsi = c.template_imsi "
        "JOIN temp.template_ids t ON t.imsi = c.template_imsi ORDER BY c.k, f.seq"
    ),
}
# Tables a regulator writes (decisions, the allow-list) or a partner does (its
# indicators about its own SIMs): a benchmark's template
# has none, and a copy would not know whose SIMs their rows should name.
EMPTY_IN_TEMPLATES: Final = frozenset({"case_decisions", "allow_list", "foreign_indicators"})
# Tables that hold no per-SIM rows: left as they are (the ledger's days are
# the template's, which its copies keep).
NOT_PER_SIM: Final = frozenset(
    {
        "api_keys",
        "schema_migrations",
        "outbox",
        "shard_cursors",
        "shard_owners",
        "processed_event_days",
    }
)
# A multiple of the four operators, of two SIMs per holder and of the 200 SIM
# numbers per dealer: a copy keeps all three groupings of its template.
TEMPLATE_SIMS_MULTIPLE: Final = 400
SIMS_PER_DEALER_NUMBER: Final = 200
_OPERATOR_DIGITS: Final = 5
# What may name a SIM, a holder, a dealer or an event in a per-SIM row.
_IDENTIFIER = re.compile(
    r"(?P<uuid>\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b)"
    r"|(?P<holder_ref>\b[0-9a-f]{64}\b)"
    r"|(?P<iccid>\b\d{19,20}\b)"
    r"|(?P<imsi>\b\d{15}\b)"
    r"|(?P<msisdn>\+\d{11})"
    r"|(?P<dealer_id>D-\d{5}-\d{6})"
)
# Template columns that may hold an identifier, by table (the `imsi` column names the SIM).
_CHECKED_COLUMNS: Final = {
    "sims": ("state", "case_record"),
    "registrations": ("iccid", "msisdn", "holder_ref", "event_id", "holder_since_event"),
    "registration_events": ("holder_ref", "event_id"),
    "dealer_activations": ("dealer_key",),
    "deadlines": ("ref",),
    "notices": ("notice",),
    "notice_feed": ("notice_id", "notice"),
}


class CopyError(RuntimeError):
    """The template cannot be copied faithfully."""


# (IMSI, ICCID, MSISDN, holder ref, dealer key) of a SIM number.
Identity = tuple[str, str, str, str, str]


def identity(n: int) -> Identity:
    """SIM `n`'s identifiers as the worker stores them (bench.events' values)."""
    operator = events.operator_of(n)
    return (
        events.imsi(n),
        # A million are made: the table-driven form of events.iccid(n).
        events.fast_iccid(n),
        events.msisdn(n),
        events.holder_ref(events.holder_of(n)),
        f"{operator}:D-{operator}-{n // SIMS_PER_DEALER_NUMBER:06d}",
    )


def shard_of(imsi: str, partitions: int) -> int:
    """The partition kafka-python's default partitioner gives a record keyed by `imsi`."""
    hashed: int = murmur2(imsi.encode())
    return (hashed & 0x7FFFFFFF) % partitions


def _copy_rows(
    template_imsis: list[str], sims_per_copy: int, copies: range, partitions: int
) -> list[tuple[str, int, str, str, str, str, str, int]]:
    """Rows of temp.copy_ids for `copies`: made in a pool process, ahead of the inserts."""
    rows = []
    for k in copies:
        for template_imsi in template_imsis:
            n = int(template_imsi[_OPERATOR_DIGITS:]) + k * sims_per_copy
            imsi, iccid, msisdn, holder_ref, dealer_key = identity(n)
            shard = shard_of(imsi, partitions)
            rows.append((template_imsi, k, imsi, iccid, msisdn, holder_ref, dealer_key, shard))
    return rows


def _copy_event_key(copy: int, template_key: bytes) -> bytes:
    return hashlib.sha256(copy.to_bytes(8, "big") + template_key).digest()[: len(template_key)]


def add_copies(store: Path, template: Template, copies: range, partitions: int) -> None:
    """Insert copies `copies` (numbers >= 1) of `template`'s SIMs into `store`.

    `store` must hold no SIM of those copies yet (it usually holds the
    template itself, copy 0, and earlier copies); no worker may run on it."""
    if copies.start < 1:
        raise CopyError("copy 0 is the template itself")
    connection = sqlite3.connect(store, isolation_level=None)
    try:
        _check_tables(connection)
        # A bulk load while nothing else runs: no journal (the rows are written
        # once, not to the WAL and again at the checkpoint), no fsync, a large
        # cache. The worker's connection puts back WAL mode and its own cache.
        connection.execute("PRAGMA journal_mode=OFF")
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("PRAGMA cache_size=-262144")
        connection.execute("PRAGMA temp_store=MEMORY")
        connection.execute("ATTACH DATABASE ? AS template", (f"file:{template.path}?mode=ro",))
        connection.create_function("case_record_id", 2, record_id_for, deterministic=True)
        connection.create_function("copy_event_key", 2, _copy_event_key, deterministic=True)
        connection.execute(
            "CREATE TEMP TABLE template_ids (imsi TEXT PRIMARY KEY, iccid TEXT, msisdn TEXT, "
            "holder_ref TEXT, event_id TEXT)"
        )
        connection.executemany(
            "INSERT INTO temp.template_ids VALUES (?, ?, ?, ?, ?)",
            ((imsi, *values) for imsi, values in template.identifiers.items()),
        )
        connection.execute("CREATE TEMP TABLE copies (k INTEGER PRIMARY KEY)")
        connection.execute(
            "CREATE TEMP TABLE copy_ids (template_imsi TEXT, k INTEGER, imsi TEXT, iccid TEXT, "
            "msisdn TEXT, holder_ref TEXT, dealer_key TEXT, shard INTEGER)"
        )
        for group, rows in _copy_groups(
            sorted(template.identifiers), template.sims, copies, partitions
        ):
            connection.execute("BEGIN")
            connection.execute("DELETE FROM temp.copies")
            connection.execute("DELETE FROM temp.copy_ids")
            connection.executemany("INSERT INTO temp.copies (k) VALUES (?)", ((k,) for k in group))
            connection.executemany(
                "INSERT INTO temp.copy_ids VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            for statement in PER_SIM_COPIES.values():
                connection.execute(statement)
            connection.execute("COMMIT")
        connection.execute("DETACH DATABASE template")
        connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def _copy_groups(
    template_imsis: list[str], sims_per_copy: int, copies: range, partitions: int
) -> Iterator[tuple[range, list[tuple[str, int, str, str, str, str, str, int]]]]:
    """Groups of about 50,000 copied SIMs with their identifiers, made one
    group ahead in another process: the identifiers (a SHA-256, a Luhn digit
    and a murmur2 per SIM, in Python) then cost no time beside SQLite's inserts."""
    per_group = max(1, 50_000 // sims_per_copy)
    groups = [
        range(first, min(first + per_group, copies.stop))
        for first in range(copies.start, copies.stop, per_group)
    ]
    with ProcessPoolExecutor(max_workers=1) as pool:
        pending = [
            pool.submit(_copy_rows, template_imsis, sims_per_copy, group, partitions)
            for group in groups[:2]
        ]
        for index, group in enumerate(groups):
            rows = pending[index].result()
            if index + 2 < len(groups):
                pending.append(
                    pool.submit(
                        _copy_rows, template_imsis, sims_per_copy, groups[index + 2], partitions
                    )
                )
            yield group, rows


@dataclass(frozen=True)
class Template:
    """A store a worker wrote for SIMs 0..sims-1, checked to be copyable."""

    path: Path
    sims: int
    # IMSI -> (ICCID, MSISDN, holder ref, registration event id) of each SIM.
    identifiers: dict[str, tuple[str, str, str, str]]

    @staticmethod
    def check(path: Path, sims: int) -> Template:
        """Every identifier in the per-SIM rows must be one the copy rewrites."""
        if sims % TEMPLATE_SIMS_MULTIPLE:
            raise CopyError(f"a template holds a multiple of {TEMPLATE_SIMS_MULTIPLE} SIMs")
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            _check_tables(connection)
            registered = dict(connection.execute("SELECT imsi, event_id FROM registrations"))
            found: dict[str, tuple[str, str, str, str]] = {}
            allowed: dict[str, set[str]] = {}
            dealers: dict[str, str] = {}
            for (imsi,) in connection.execute("SELECT imsi FROM sims"):
                n = int(imsi[_OPERATOR_DIGITS:])
                own_imsi, iccid, msisdn, holder_ref, dealer_key = identity(n)
                if n >= sims or own_imsi != imsi:
                    raise CopyError(f"SIM {imsi} is not one of the template's {sims:,}")
                event_id = registered.get(imsi, "")
                found[imsi] = (iccid, msisdn, holder_ref, event_id)
                allowed[imsi] = {imsi, iccid, msisdn, holder_ref, event_id}
                dealers[imsi] = dealer_key.split(":", 1)[1]
            if len(found) != sims:
                raise CopyError(f"the template holds {len(found):,} SIMs, not {sims:,}")
            for table, columns in _CHECKED_COLUMNS.items():
                for imsi, *texts in connection.execute(
                    f"SELECT imsi, {', '.join(columns)} FROM {table}"
                ):
                    if imsi not in found:
                        raise CopyError(f"{table} has a row of SIM {imsi}, which has no state")
                    own = allowed[imsi]
                    if table == "dealer_activations":
                        # The only rows whose dealer the copy rewrites.
                        own = own | {dealers[imsi]}
                    for text in texts:
                        _check_identifiers(str(text or ""), own, table, imsi)
        finally:
            connection.close()
        return Template(path, sims, found)


def _check_identifiers(text: str, allowed: set[str], table: str, imsi: str) -> None:
    # A SIM's registration history and its pending activations' deadlines
    # name events of their own, which are rewritten by prefix like the ledger's.
    any_event_id = table in ("registration_events", "deadlines", "notice_feed")
    for match in _IDENTIFIER.finditer(text):
        value = match.group()
        if value in allowed:
            continue
        if match.lastgroup == "uuid" and (
            any_event_id
            or _is_case_record_id(text, match)
            or _follows(text, match, '"notice_id":"')
        ):
            continue
        raise CopyError(
            f"{table} row of SIM {imsi} holds {match.lastgroup} {value}, not one of its own: "
            "the copy would not rewrite it"
        )


def _is_case_record_id(text: str, match: re.Match[str]) -> bool:
    return _follows(text, match, '"record_id":"')


def _follows(text: str, match: re.Match[str], member: str) -> bool:
    return text[max(0, match.start() - len(member)) : match.start()] == member


def _check_tables(connection: sqlite3.Connection) -> None:
    tables = {
        name
        for (name,) in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    }
    unknown = tables - set(PER_SIM_COPIES) - NOT_PER_SIM - EMPTY_IN_TEMPLATES
    if unknown:
        raise CopyError(f"tables this copy does not know how to copy: {', '.join(sorted(unknown))}")
    for table in sorted(EMPTY_IN_TEMPLATES & tables):
        if connection.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone():
            raise CopyError(
                f"table {table} is not empty: a copy would not know whose rows they are"
            )
