"""What the store keeps per SIM, per registration and per event, measured
with SQLite's `dbstat` after the worker's own batch code has applied a day's
worth of a population's events, and what that comes to for a country.

The baseline is what Kafka itself keeps of the same events: their JSON on
the wire (record headers and Kafka's framing left out). A store that keeps
more per event than the event is long grows faster than the log it reads.
"""

from __future__ import annotations

import itertools
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import events
from bench.environment import BenchEnvironment
from bench.profiling import Profiler
from bench.report import Figure
from bench.sizes import Sizes
from schemas import attestation
from simguard.partitioning import partition_for_key
from simguard.settings import Settings
from simguard.store import open_store
from workers.housekeeping import prune
from workers.processor import BatchProcessor
from workers.records import RecordInMemory

BATCH_RECORDS = 2_000
PARTITIONS = 6
# The national figures the projection is for (the sizing brief).
NATIONAL_SIMS = 130_000_000
OBSERVATION_RATES = (2_000, 20_000)
SECONDS_PER_DAY = 86_400
# Targets: bytes per ledger entry; bytes per SIM (state + registration).
LEDGER_TARGET_BYTES = 40
SIM_TARGET_BYTES = 600

# Which tables make up what a SIM costs, and what an event costs.
SIM_TABLES = ("sims",)
REGISTRATION_TABLES = ("registrations", "registration_events")
LEDGER_TABLES = ("processed_events",)
# The run across the retention: this many days beyond it, a SIM seen this
# often a day, and how much the ledger may still grow once the window is full
# (a day's events vary a little in how they fill the B-tree's pages).
RETENTION_DAYS_PAST = 5
OBSERVATIONS_PER_SIM_DAY = 20
RETENTION_GROWTH_LIMIT = 1.05


@dataclass(frozen=True)
class TableBytes:
    """A table's bytes on disk with its indexes, and its rows."""

    table: str
    table_bytes: int
    index_bytes: int
    rows: int

    @property
    def total(self) -> int:
        return self.table_bytes + self.index_bytes


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    del profiler  # the batch code runs in this process
    return [*_per_sim_and_event(env, sizes), _across_the_retention(env, sizes)]


def _per_sim_and_event(env: BenchEnvironment, sizes: Sizes) -> list[Figure]:
    settings = env.settings("storage")
    store = open_store(settings.database_url)
    processor = BatchProcessor(settings)
    processor.partition_counts = dict.fromkeys(settings.topics().values(), PARTITIONS)
    sims, per_sim = sizes.storage_sims, sizes.storage_observations_per_sim
    wire_bytes = {"sims": 0, "events": 0}
    applied = 0
    # The worker's part only: making and signing the events is the producers'.
    cpu_seconds = 0.0
    try:
        for batch in _batches(settings, sims, per_sim, wire_bytes):
            started = time.process_time()
            now = datetime.now(UTC)
            with store.transaction() as tx:
                outcome = processor.apply_records(tx, processor.decode(batch, now), now)
                # The outbox is emptied by publishing; kept here it would be counted.
                tx.execute("DELETE FROM outbox")
            cpu_seconds += time.process_time() - started
            applied += sum(n for (_, result), n in outcome.outcomes.items() if result == "applied")
        tables = _table_bytes(settings)
    finally:
        store.close()
    return _figures(tables, sims, applied, wire_bytes, cpu_seconds, settings)


def _across_the_retention(env: BenchEnvironment, sizes: Sizes) -> Figure:
    """The ledger day after day, past its retention: each simulated day the
    worker's batch code applies a day's observations on that day's clock and
    housekeeping prunes as the worker's would. Once the oldest day leaves the
    window each new day replaces one, so the ledger stops growing."""
    settings = env.settings("storage-days")
    store = open_store(settings.database_url)
    processor = BatchProcessor(settings)
    processor.partition_counts = dict.fromkeys(settings.topics().values(), PARTITIONS)
    retention = settings.ledger_retention_days
    days = retention + RETENTION_DAYS_PAST
    per_day = sizes.storage_days_events
    sims = max(per_day // OBSERVATIONS_PER_SIM_DAY, 1)
    first_day = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0) - timedelta(
        days=days
    )
    ledger_bytes: list[int] = []
    file_bytes: list[int] = []
    try:
        for day in range(days):
            clock = first_day + timedelta(days=day)
            for batch in _observation_batches(settings, sims, per_day // sims, clock):
                with store.transaction() as tx:
                    processor.apply_records(tx, processor.decode(batch, clock), clock)
                    tx.execute("DELETE FROM outbox")
            prune(store, retention, clock)
            tables = _table_bytes(settings)
            ledger_bytes.append(tables["processed_events"].total)
            file_bytes.append(_file_bytes(settings))
    finally:
        store.close()
    # The window is full at the end of day `retention` (days 0..retention);
    # the day after is the first on which a whole day leaves it.
    full = ledger_bytes[retention + 1]
    last = ledger_bytes[-1]
    unpruned = days * ledger_bytes[retention] / (retention + 1)
    figure = Figure(
        key="storage_ledger_across_retention",
        label="ledger bytes after the retention is reached (last day ÷ first pruned day)",
        unit="bytes",
        value=last,
        text=f"{last / 2**20:,.1f} MiB ÷ {full / 2**20:,.1f} MiB = {last / full:.2f}",
        baseline=unpruned,
        baseline_text=f"{unpruned / 2**20:,.1f} MiB",
        baseline_label=f"the same {days} days kept without pruning",
        target="≤ 1.05: stops growing",
        met=last / full <= RETENTION_GROWTH_LIMIT,
        method=(
            f"{days} simulated days of {per_day:,} observations each ({sims:,} SIMs), "
            f"applied by the worker's batch code with each day's clock; housekeeping "
            f"(`ledger_retention_days` = {retention}) after each day. `processed_events` "
            "in bytes (dbstat) and the store file, at the end of each day."
        ),
    )
    figure.details = [
        "ledger MiB by day: " + ", ".join(f"{b / 2**20:.1f}" for b in ledger_bytes),
        "store file MiB by day (freed pages are reused, not returned): "
        + ", ".join(f"{b / 2**20:.1f}" for b in file_bytes),
    ]
    return figure


def _observation_batches(
    settings: Settings, sims: int, per_sim: int, clock: datetime
) -> Iterator[list[RecordInMemory]]:
    observations = events.observations(0, sims, per_sim, clock)
    stream = (("network_events", event) for event in observations)
    return _in_batches(settings, stream, int(clock.timestamp() * 1000))


def _file_bytes(settings: Settings) -> int:
    path = settings.database_url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path)
    try:
        (pages,) = connection.execute("PRAGMA page_count").fetchone()
        (page_size,) = connection.execute("PRAGMA page_size").fetchone()
    finally:
        connection.close()
    return int(pages) * int(page_size)


def _batches(
    settings: Settings, sims: int, per_sim: int, wire_bytes: dict[str, int]
) -> Iterator[list[RecordInMemory]]:
    """Every SIM registered and activated, then `per_sim` observations of each,
    in batches as a worker polls them; counts the events' wire bytes."""
    now = datetime.now(UTC)
    stream: Iterator[tuple[str, dict[str, Any]]] = itertools.chain(
        events.activations_and_registrations(0, sims, now),
        (("network_events", e) for e in events.observations(0, sims, per_sim, now)),
    )
    return _in_batches(settings, stream, int(time.time() * 1000), wire_bytes)


def _in_batches(
    settings: Settings,
    stream: Iterable[tuple[str, dict[str, Any]]],
    now_ms: int,
    wire_bytes: dict[str, int] | None = None,
) -> Iterator[list[RecordInMemory]]:
    """(topic kind, event) pairs as the attested records a worker polls, in
    batches; counts their wire bytes into `wire_bytes` if given."""
    topics = settings.topics()
    batch: list[RecordInMemory] = []
    for offset, (kind, event) in enumerate(stream):
        key = event["imsi"].encode()
        value = events.json_bytes(event)
        if wire_bytes is not None:
            wire_bytes["events"] += len(value)
            if kind != "network_events":
                wire_bytes["sims"] += len(value)
        headers = [(attestation.HEADER, attestation.sign(settings.attestation_secret, value))]
        partition = partition_for_key(key, PARTITIONS)
        batch.append(RecordInMemory(topics[kind], partition, offset, key, value, now_ms, headers))
        if len(batch) == BATCH_RECORDS:
            yield batch
            batch = []
    if batch:
        yield batch


def _table_bytes(settings: Settings) -> dict[str, TableBytes]:
    """Bytes per table and its indexes, from SQLite's `dbstat` virtual table."""
    path = settings.database_url.removeprefix("sqlite:///")
    connection = sqlite3.connect(path)
    try:
        owner = dict(
            connection.execute("SELECT name, tbl_name FROM sqlite_master WHERE type != 'view'")
        )
        kinds = dict(connection.execute("SELECT name, type FROM sqlite_master"))
        found: dict[str, list[int]] = {}
        for name, size in connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            sizes = found.setdefault(table, [0, 0])
            sizes[0 if kinds.get(name) == "table" else 1] += int(size)
        return {
            table: TableBytes(
                table,
                table_bytes,
                index_bytes,
                int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]),
            )
            for table, (table_bytes, index_bytes) in found.items()
            if kinds.get(table) == "table"
        }
    finally:
        connection.close()


def _figures(
    tables: dict[str, TableBytes],
    sims: int,
    applied: int,
    wire_bytes: dict[str, int],
    cpu_seconds: float,
    settings: Settings,
) -> list[Figure]:
    def total(names: tuple[str, ...]) -> int:
        return sum(tables[name].total for name in names if name in tables)

    ledger = tables.get("processed_events")
    ledger_rows = ledger.rows if ledger else 0
    per_event = total(LEDGER_TABLES) / max(ledger_rows, 1)
    per_sim = (total(SIM_TABLES) + total(REGISTRATION_TABLES)) / sims
    wire_per_event = wire_bytes["events"] / max(applied, 1)
    wire_per_sim = wire_bytes["sims"] / sims
    retention = settings.ledger_retention_days
    ledger_figure = Figure(
        key="storage_ledger_bytes_per_event",
        label="store bytes per event kept for idempotency",
        unit="bytes",
        value=per_event,
        text=f"{per_event:,.0f} B",
        baseline=wire_per_event,
        baseline_text=f"{wire_per_event:,.0f} B",
        baseline_label="the event's JSON as Kafka keeps it",
        target=f"≤ {LEDGER_TARGET_BYTES} B",
        met=per_event <= LEDGER_TARGET_BYTES,
        method=(
            f"{applied:,} events ({sims:,} SIMs registered and activated, then observations) "
            "applied by the worker's batch code to a SQLite store in batches of "
            f"{BATCH_RECORDS:,}; `processed_events` with its indexes (dbstat) over its rows. "
            f"Kept {retention} days (`ledger_retention_days`)."
        ),
    )
    sim_figure = Figure(
        key="storage_bytes_per_sim",
        label="store bytes per SIM (state + registration)",
        unit="bytes",
        value=per_sim,
        text=f"{per_sim:,.0f} B",
        baseline=wire_per_sim,
        baseline_text=f"{wire_per_sim:,.0f} B",
        baseline_label="its activation and registration as JSON on Kafka",
        target=f"≤ {SIM_TARGET_BYTES} B",
        met=per_sim <= SIM_TARGET_BYTES,
        method=(
            "`sims`, `registrations` and `registration_events` with their indexes (dbstat) "
            "over the SIMs, after the same events."
        ),
    )
    sim_figure.details = [_table_line(t, sims) for t in sorted(tables.values(), key=_by_size)]
    ledger_figure.details = _projection(per_sim, per_event, retention, cpu_seconds / applied)
    return [ledger_figure, sim_figure]


def _by_size(table: TableBytes) -> int:
    return -table.total


def _table_line(table: TableBytes, sims: int) -> str:
    per_row = table.total / table.rows if table.rows else 0.0
    return (
        f"`{table.table}`: {table.rows:,} rows, {table.table_bytes / 2**20:,.1f} MiB table + "
        f"{table.index_bytes / 2**20:,.1f} MiB indexes; {per_row:,.0f} B a row, "
        f"{table.total / sims:,.0f} B a SIM"
    )


def _projection(
    per_sim: float, per_event: float, retention_days: int, cpu_per_event: float
) -> list[str]:
    lines = [
        f"projected for {NATIONAL_SIMS / 1e6:,.0f} M SIMs: state + registrations "
        f"{NATIONAL_SIMS * per_sim / 1e12:,.2f} TB"
    ]
    for rate in OBSERVATION_RATES:
        ledger = rate * SECONDS_PER_DAY * retention_days * per_event
        cores = rate * cpu_per_event
        lines.append(
            f"at {rate:,} observations/s: ledger {ledger / 1e12:,.2f} TB for {retention_days} "
            f"days ({rate * SECONDS_PER_DAY * per_event / 1e9:,.1f} GB an event-day); "
            f"worker CPU {cores:,.1f} cores at {cpu_per_event * 1e6:,.0f} µs an event "
            "(decode and apply, SQLite, this machine): at least as many input partitions, "
            "one worker process per core"
        )
    return lines
