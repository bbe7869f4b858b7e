"""Worker memory per million active SIMs.

The worker keeps per-SIM state in the store, not in its heap, so its resident
set should not grow with the number of SIMs. One worker is fed the events of
a first group of SIMs (a registration and an activation each), then of a
second, larger group; its VmRSS is read after each, once it has committed
everything. The figure extrapolates linearly to one million SIMs from the two
points (RSS at the larger size + growth per SIM times the SIMs still to come),
which overstates it when the growth is a cache that stops at its cap (SQLite's
page cache is capped at 64 MiB per connection).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from bench import events
from bench.environment import BenchEnvironment, BenchError
from bench.kafka_io import produce, watch_commits
from bench.procstat import status_kib
from bench.profiling import Profiler
from bench.report import Figure
from bench.sizes import Sizes

TARGET_MIB = 256
MILLION = 1_000_000
# The store's SQLite page cache (simguard/store: PRAGMA cache_size=-65536).
SQLITE_CACHE_MIB = 64


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    del profiler
    settings = env.settings("memory")
    topics = [settings.topic_registrations, settings.topic_activations]
    small, large = sizes.memory_sims
    now = datetime.now(UTC)
    worker, _ = env.start_worker(settings, "bench-memory")
    readings: list[tuple[int, float, float, float]] = []
    try:
        idle_mib = status_kib(worker.pid, "VmRSS") / 1024
        loaded_sims = 0
        for sims in (small, large):
            produce(
                settings,
                (
                    (settings.topics()[kind], event["imsi"].encode(), events.json_bytes(event))
                    for kind, event in events.activations_and_registrations(
                        loaded_sims, sims - loaded_sims, now
                    )
                ),
            )
            loaded_sims = sims
            progress = watch_commits(
                settings, topics, 2 * sims, timeout=sizes.worker_max_seconds * 2,
                alive=worker.running,
            )  # fmt: skip
            if not progress.done:
                raise BenchError(f"the worker did not catch up with {sims:,} SIMs in time")
            database = env.database_path(settings)
            store_bytes = sum(
                os.path.getsize(p)
                for p in (database, database.with_name(database.name + "-wal"))
                if p.exists()
            )
            readings.append(
                (
                    sims,
                    status_kib(worker.pid, "VmRSS") / 1024,
                    status_kib(worker.pid, "VmHWM") / 1024,
                    store_bytes / 2**20,
                )
            )
    finally:
        env.stop(worker)
    (sims_1, rss_1, _, store_1), (sims_2, rss_2, peak_2, store_2) = readings
    growth_per_sim = max(rss_2 - rss_1, 0.0) / (sims_2 - sims_1)
    projected = rss_2 + growth_per_sim * max(MILLION - sims_2, 0)
    figure = Figure(
        key="worker_memory",
        label="worker memory per 1 M active SIMs (RSS)",
        unit="MiB",
        value=projected,
        text=f"{projected:.0f} MiB",
        target=f"≤ {TARGET_MIB} MiB",
        met=projected <= TARGET_MIB,
    )
    if store_1 < SQLITE_CACHE_MIB:
        # Growth between the readings is then mostly the page cache filling up:
        # a straight line through it says nothing about a million SIMs.
        figure.met = None
        figure.details.append(
            f"not judged: the store was {store_1:.0f} MiB at the first reading, less than "
            f"SQLite's {SQLITE_CACHE_MIB} MiB page cache, so the sizes are too small to project"
        )
    figure.method = (
        f"One `simguard worker`; VmRSS from /proc/PID/status after it has committed the "
        f"events (a registration and an activation per SIM) of {sims_1:,} SIMs, then of "
        f"{sims_2:,}. Projection to 1 M SIMs: RSS at {sims_2:,} + growth per SIM between the "
        "two readings times the SIMs still to come (linear: an upper bound when the growth is a "
        "capped cache)."
    )
    figure.details += [
        f"RSS idle after start-up: {idle_mib:.0f} MiB",
        f"RSS after {sims_1:,} SIMs: {rss_1:.0f} MiB; after {sims_2:,} SIMs: {rss_2:.0f} MiB "
        f"(peak {peak_2:.0f} MiB)",
        f"growth: {growth_per_sim * 1024 * 1000:.1f} KiB per 1,000 SIMs",
        f"store (SQLite file + WAL) after {sims_2:,} SIMs: {store_2:.0f} MiB "
        f"({store_2 * 2**20 / sims_2:,.0f} bytes per SIM, all tables)",
    ]
    return [figure]
