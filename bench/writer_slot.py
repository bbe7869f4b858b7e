"""How much of a worker's batch runs in SQLite's single writer slot, and what
that leaves a second worker process, without Kafka or a broker.

The workers' own batch code (workers.processor.BatchProcessor) applies the
worker benchmark's backlog (activations and registrations, as the API signs
them) to a fresh SQLite store. Each of `--workers` processes takes the
partitions a range assignment would give it, decodes a batch outside the slot
and applies it inside, as `WorkerLoop.step` does, then sleeps `--kafka-ms` for
the Kafka transaction it would run next (the slot is free meanwhile).

    python -m bench.writer_slot --workers 2 --sims 50000
"""

from __future__ import annotations

import multiprocessing
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from bench import events
from schemas import attestation
from simguard.partitioning import partition_for_key
from simguard.settings import Settings, load_settings
from simguard.store import open_store
from workers.records import RecordInMemory

PARTITIONS = 6


@dataclass(frozen=True)
class Share:
    worker: int
    events: int
    seconds: float
    cpu_seconds: float
    slot_seconds: float


def _settings(folder: Path) -> Settings:
    empty = folder / "empty.toml"
    empty.write_text("")
    return load_settings(environ={"SIMGUARD_CONFIG": str(empty)}).replace(
        database_url=f"sqlite:///{folder / 'store.db'}",
        hmac_secret="writer-slot-" + "0" * 52,
        attestation_secret="writer-slot-attestation-" + "0" * 40,
    )


def _records(settings: Settings, sims: int) -> dict[tuple[int, str], list[RecordInMemory]]:
    """The backlog by topic partition, in offset order."""
    topics = settings.topics()
    by_partition: dict[tuple[int, str], list[RecordInMemory]] = {}
    now_ms = int(time.time() * 1000)
    for offset, (kind, event) in enumerate(
        events.activations_and_registrations(0, sims, datetime.now(UTC))
    ):
        key = event["imsi"].encode()
        partition = partition_for_key(key, PARTITIONS)
        value = events.json_bytes(event)
        headers = [(attestation.HEADER, attestation.sign(settings.attestation_secret, value))]
        record = RecordInMemory(topics[kind], partition, offset, key, value, now_ms, headers)
        by_partition.setdefault((partition, topics[kind]), []).append(record)
    return by_partition


def _batches(
    mine: dict[tuple[int, str], list[RecordInMemory]], batch_records: int
) -> Iterator[list[RecordInMemory]]:
    """Batches taking an even share of each owned topic partition in turn, as
    a poll of a backlog does."""
    share = max(1, batch_records // max(1, len(mine)))
    position = dict.fromkeys(mine, 0)
    while any(position[p] < len(records) for p, records in mine.items()):
        batch: list[RecordInMemory] = []
        for partition, records in mine.items():
            batch.extend(records[position[partition] : position[partition] + share])
            position[partition] += share
        yield batch


def _work(
    folder: Path,
    worker: int,
    workers: int,
    sims: int,
    batch_records: int,
    kafka_ms: float,
    background_checkpoints: bool,
    results: multiprocessing.Queue[Share],
) -> None:
    from workers.processor import BatchProcessor

    settings = _settings(folder)
    store = open_store(
        settings.database_url, migrate=False, background_checkpoints=background_checkpoints
    )
    processor = BatchProcessor(settings)
    # A range assignment of 6 partitions to N workers: consecutive blocks.
    owned = [p for p in range(PARTITIONS) if p * workers // PARTITIONS == worker]
    mine = {
        tp: records for tp, records in sorted(_records(settings, sims).items()) if tp[0] in owned
    }
    started, cpu_started = time.perf_counter(), time.process_time()
    slot = 0.0
    count = 0
    for batch in _batches(mine, batch_records):
        now = datetime.now(UTC)
        decoded = processor.decode(batch, now)
        with store.transaction() as tx:
            entered = time.perf_counter()
            processor.apply_records(tx, decoded, now)
        slot += time.perf_counter() - entered
        count += len(batch)
        time.sleep(kafka_ms / 1000)
    results.put(
        Share(
            worker,
            count,
            time.perf_counter() - started,
            time.process_time() - cpu_started,
            slot,
        )
    )
    store.close()


@click.command()
@click.option("--workers", type=int, default=2, show_default=True)
@click.option("--sims", type=int, default=50_000, show_default=True)
@click.option("--batch-records", type=int, default=2000, show_default=True)
@click.option(
    "--kafka-ms", type=float, default=20.0, show_default=True, help="Pause after each batch."
)
@click.option("--background-checkpoints/--checkpoints-in-commit", default=True, show_default=True)
def main(
    workers: int, sims: int, batch_records: int, kafka_ms: float, background_checkpoints: bool
) -> None:
    with tempfile.TemporaryDirectory(prefix="simguard-writer-slot-") as name:
        folder = Path(name)
        open_store(_settings(folder).database_url).close()
        results: multiprocessing.Queue[Share] = multiprocessing.Queue()
        processes = [
            multiprocessing.Process(
                target=_work,
                args=(
                    folder,
                    worker,
                    workers,
                    sims,
                    batch_records,
                    kafka_ms,
                    background_checkpoints,
                    results,
                ),
            )
            for worker in range(workers)
        ]
        for process in processes:
            process.start()
        shares = sorted((results.get() for _ in processes), key=lambda s: s.worker)
        for process in processes:
            process.join()
    total = sum(s.events for s in shares)
    longest = max(s.seconds for s in shares)
    click.echo(
        f"{workers} worker(s), {total:,} events in {longest:.2f} s: {total / longest:,.0f} events/s"
    )
    for share in shares:
        click.echo(
            f"  worker {share.worker}: {share.events:,} events, "
            f"CPU {share.cpu_seconds / share.events * 1e6:.0f} µs/event, "
            f"in the writer slot {share.slot_seconds / share.events * 1e6:.0f} µs/event "
            f"(commit included)"
        )


if __name__ == "__main__":
    main()
