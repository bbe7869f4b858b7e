"""Where the worker's resident memory goes, on a store the memory benchmark
kept (`simguard bench --only memory --keep`, then its memory.db).

The worker's own batch code (workers.processor.BatchProcessor) applies batches
of events of random SIMs to a copy of the store in this process, without Kafka,
with the store's SQLite page cache at the size given; VmRSS is read from /proc
and the Python heap from tracemalloc. What the resident set holds beyond the
heap and the imports is then SQLite's page cache and the C allocator's own.

    python -m bench.memory_breakdown STORE.db --sims 1000000 --cache-kib 65536
"""

from __future__ import annotations

import os
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import click

from bench import events
from bench.memory import touching_events
from bench.rss_sampler import high_water_mib, rollup_kib, rss_mib


@click.command()
@click.argument("store", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--sims", type=int, required=True, help="SIMs in the store (events draw from them).")
@click.option("--cache-kib", type=int, default=65536, show_default=True)
@click.option("--batches", type=int, default=20, show_default=True)
@click.option("--batch-records", type=int, default=2000, show_default=True)
def main(store: Path, sims: int, cache_kib: int, batches: int, batch_records: int) -> None:
    # Imported here so that the reading after imports counts them, as the worker's idle RSS does.
    from simguard.settings import load_settings
    from simguard.store import open_store
    from workers.processor import BatchProcessor
    from workers.records import RecordInMemory

    pid = os.getpid()
    empty = store.with_name("memory-breakdown.toml")
    empty.write_text("")
    settings = load_settings(environ={"SIMGUARD_CONFIG": str(empty)}).replace(
        database_url=f"sqlite:///{store}",
        hmac_secret="breakdown-" + "0" * 54,
        attestation_secret="breakdown-attestation-" + "0" * 42,
    )
    click.echo(f"after imports: RSS {rss_mib(pid):.0f} MiB")
    sqlite_store = open_store(settings.database_url, migrate=False)
    processor = BatchProcessor(settings)
    with sqlite_store.transaction() as tx:
        tx.execute(f"PRAGMA cache_size=-{cache_kib}")
    tracemalloc.start()
    topics = settings.topics()
    stream = touching_events(sims, batches * batch_records, datetime.now(UTC))
    now_ms = int(time.time() * 1000)
    for batch in range(batches):
        first = batch * batch_records
        records = [
            RecordInMemory(
                topics[kind], 0, first + i, event["imsi"].encode(), events.json_bytes(event), now_ms
            )
            for i, (kind, event) in zip(range(batch_records), stream, strict=False)
        ]
        now = datetime.now(UTC)
        with sqlite_store.transaction() as tx:
            processor.apply_records(tx, processor.decode(records, now), now)
        heap, heap_peak = tracemalloc.get_traced_memory()
        click.echo(
            f"batch {batch + 1}: RSS {rss_mib(pid):.0f} MiB (peak {high_water_mib(pid):.0f}), "
            f"Python heap {heap / 2**20:.1f} MiB (peak {heap_peak / 2**20:.1f})"
        )
    rollup = rollup_kib(pid)
    click.echo(
        f"anonymous {rollup['Anonymous'] / 1024:.0f} MiB, "
        f"file-backed {(rollup['Rss'] - rollup['Anonymous']) / 1024:.0f} MiB"
    )
    sqlite_store.close()


if __name__ == "__main__":
    main()
