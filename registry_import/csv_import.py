"""`simguard registry import FILE.csv`: bulk-load an operator's existing
registrations straight into the store.

Columns: imsi, iccid, msisdn, operator, id_type, id_number, nationality,
verification, registered_at, status (event_id optional). Every row is checked
like an API registration (`registry_import/rows.py` gives the schemas'
verdicts), the identity number is replaced by the holder reference at once and
never stored. A row that fails is counted with its line number and reason,
never with its content.

The file is cut into blocks of whole records; one process per core checks a
block (column by column, `registry_import/block.py`) and writes it in its
own transaction, blocks in file order (the writer
lock passes from block to block), so the first of two rows with the same
key still wins as before. Into an empty store (a first load, no SIM seen yet)
the holder index is dropped for the load and built once at the end:
maintaining it row by row is random I/O into a B-tree larger than the cache.
An import cut short (killed) leaves the blocks written so far and, in that
case, no holder index; running the same import again is idempotent and builds
it.

SIMs the worker already knows, and SIMs beyond a holder's limit, are sent a
recheck so that their worker refreshes their registration and case: the
worker stays the only writer of a SIM's case.
"""

from __future__ import annotations

import csv
import locale
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.synchronize import Condition
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from tqdm import tqdm

from registry_import.rows import COLUMNS
from simguard.kafka_clients import reliable_producer
from simguard.settings import Settings
from simguard.store import Store, open_store
from simguard.store import registrations as registration_rows
from simguard.store.registrations import RegistrationLoader
from workers.registry import holder_ranking
from workers.rules.registration import over_limit_sims

if TYPE_CHECKING:
    from registry_import.block import BlockChecker, BlockVerdicts

__all__ = ["COLUMNS", "ImportSummary", "import_csv"]

# About 30,000 rows of a typical file: large enough that a transaction and a
# hand-over between processes cost nothing per row, small enough to keep both
# cores busy from the first seconds.
BLOCK_BYTES = 4 * 1024 * 1024


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


@dataclass
class BlockResult:
    """What a block gave: its records, the refused ones by index within it."""

    records: int
    imported: int
    refused: list[tuple[int, str]]
    holders: set[str]
    known_sims: list[tuple[str, int]]


@dataclass(frozen=True)
class _Job:
    secret: str
    header: list[str]
    database_url: str
    encoding: str
    bulk: bool


# Set in each process of the pool by _start_process.
_job: _Job
_checker: BlockChecker
_store: Store
_loader: RegistrationLoader
_turn: Any
_turn_changed: Condition


def _start_process(job: _Job, turn: Any, turn_changed: Condition) -> None:
    global _job, _checker, _store, _loader, _turn, _turn_changed
    _job, _turn, _turn_changed = job, turn, turn_changed
    # Two processes keep both cores busy: polars' own threads would only
    # contend with them. Read when polars is first imported, just below.
    os.environ.setdefault("POLARS_MAX_THREADS", "1")
    from registry_import.block import BlockChecker

    _checker = BlockChecker(job.secret, job.header)
    _store = open_store(job.database_url, migrate=False)
    _loader = _store.registration_loader()


def _import_block(numbered_block: tuple[int, bytes]) -> BlockResult:
    number, block = numbered_block
    try:
        records, good, refused = _check_block(block)
        # Before this block's turn, while another process writes.
        _loader.stage(good)
        _wait_for_turn(number)
        with _store.transaction() as tx:
            # In the block's transaction: a worker that creates a SIM's state
            # after it reads the row itself, one that did before gets a recheck.
            known = _loader.write(tx)
    finally:
        # Also on failure, so that the blocks after this one are not left waiting.
        _wait_for_turn(number)
        with _turn_changed:
            _turn.value = number + 1
            _turn_changed.notify_all()
    holders = set() if _job.bulk else {row[5] for row in good}
    return BlockResult(records, len(good), refused, holders, known)


def _check_block(block: bytes) -> BlockVerdicts:
    return _checker.check(block.decode(_job.encoding))


def _wait_for_turn(number: int) -> None:
    # Blocks are written in file order, so the first of two rows with the same
    # key wins, as when one process read the file from top to bottom.
    with _turn_changed:
        _turn_changed.wait_for(lambda: _turn.value >= number)


def _read_header(path: Path, encoding: str) -> tuple[list[str], int]:
    """The column names and the byte offset of the first record after them."""
    with path.open("rb") as handle:
        first_line = handle.readline()
    header = next(csv.reader([first_line.decode(encoding)]), [])
    missing = set(COLUMNS) - set(header)
    if missing:
        raise ValueError(f"{path}: missing columns {', '.join(sorted(missing))}")
    return header, len(first_line)


def _blocks(path: Path, start: int) -> Iterator[tuple[int, bytes]]:
    """Blocks of whole records, numbered from 0.

    A block ends at a newline outside quotes: an even number of quote
    characters before it (RFC 4180 quotes a field whole and doubles the quotes
    inside it), so a quoted field spanning lines stays in one block.
    """
    number = 0
    pending = b""
    with path.open("rb") as handle:
        handle.seek(start)
        while chunk := handle.read(BLOCK_BYTES):
            pending += chunk
            cut = pending.rfind(b"\n")
            while cut >= 0 and pending.count(b'"', 0, cut + 1) % 2:
                cut = pending.rfind(b"\n", 0, cut)
            if cut < 0:
                continue
            yield number, pending[: cut + 1]
            number += 1
            pending = pending[cut + 1 :]
    if pending:
        yield number, pending


def import_csv(
    settings: Settings, path: Path, workers: int | None = None, recheck: bool = True
) -> ImportSummary:
    if not settings.hmac_secret:
        raise ValueError("an HMAC secret is needed to pseudonymise holders (SIMGUARD_HMAC_SECRET)")
    # The encoding open() would read the file with, as csv.DictReader did.
    encoding = locale.getpreferredencoding(False)
    header, first_record = _read_header(path, encoding)
    store = open_store(settings.database_url)
    with store.transaction() as tx:
        # A first load, before any traffic: no worker needs the holder index
        # while it is being rebuilt.
        bulk = registration_rows.is_first_load(tx)
        if bulk:
            registration_rows.drop_holder_index(tx)
    store.close()  # the pool's processes open their own
    job = _Job(settings.hmac_secret, header, settings.database_url, encoding, bulk)
    summary = ImportSummary()
    touched_holders: set[str] = set()
    known_sims: dict[str, int | None] = {}
    processes = workers or max(1, (multiprocessing.cpu_count() or 1))
    # Spawned, not forked: polars' thread pool (registry_block) is not usable
    # in a process forked from one that had started it.
    context = multiprocessing.get_context("spawn")
    turn, turn_changed = context.Value("q", 0, lock=False), context.Condition()
    first_line = 2
    try:
        with (
            context.Pool(processes, _start_process, (job, turn, turn_changed)) as pool,
            tqdm(unit=" rows", desc="importing", unit_scale=True) as progress,
        ):
            for result in pool.imap(_import_block, _blocks(path, first_record)):
                summary.imported += result.imported
                summary.rejected += len(result.refused)
                for index, reason in result.refused:
                    summary.reasons[reason] += 1
                    if len(summary.first_rejected_lines) < 10:
                        summary.first_rejected_lines.append(first_line + index)
                touched_holders |= result.holders
                known_sims.update(result.known_sims)
                first_line += result.records
                progress.update(result.records)
    finally:
        with store.transaction() as tx:
            registration_rows.build_holder_index(tx)
    if recheck:
        over_limit = _over_limit_sims(settings, store, None if bulk else touched_holders)
        summary.rechecks = _send_rechecks(settings, over_limit | known_sims)
    store.close()
    return summary


def _over_limit_sims(
    settings: Settings, store: Store, holders: set[str] | None
) -> dict[str, int | None]:
    """SIMs past one of their holder's caps, among the given holders (None: all of them)."""
    rules = settings.rules
    with store.transaction() as tx:
        if holders is None:
            # Into an empty registry every holder is new: one pass over the index
            # for the cap across operators, one for the lowest per-operator cap.
            holders = registration_rows.holders_with_more_than(tx, rules.identity_sim_limit)
            caps = [
                cap
                for cap in (
                    rules.identity_sim_limit_per_operator,
                    rules.identity_sim_limit_per_operator_foreign,
                )
                if cap > 0
            ]
            if caps:
                holders |= registration_rows.holders_with_more_at_one_operator(tx, min(caps))
        return {
            imsi: None
            for holder in holders
            for imsi in over_limit_sims(holder_ranking(tx, holder), rules)
        }


def _send_rechecks(settings: Settings, wanted: dict[str, int | None]) -> int:
    """One recheck per SIM, to its worker's partition when the worker already holds it."""
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
