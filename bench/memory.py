"""Worker memory (RSS) while it serves a store of a million active SIMs.

The worker keeps per-SIM state in the store, not in its heap, so what is
measured is a real `simguard worker` working on a store that really holds the
SIMs, not a projection:
1. a worker applies the events of a template of SIMs (a registration, an
   activation, one in ten by a dealer, and a network observation each) and
   is stopped; its store is saved as the template;
2. the template's per-SIM rows are copied inside SQLite (bench/store_copies.py)
   until the store holds the first size (e.g. 100,000 SIMs);
3. a fresh worker starts on it; its VmRSS is read once it is ready (idle), then
   every 0.25 s while it applies events of SIMs drawn at random from the whole
   store (re-registrations, activations and observations), so that it reads
   and writes states all over the store; its peak (VmHWM) and its RSS at the
   end are read when it has committed them all;
4. the store is copied further to the next sizes (1,000,000, then 10,000,000
   SIMs) and 3 is repeated with another fresh worker each time.
The memory figure is the peak at 1 M SIMs; the other sizes show whether the
resident set grows with the number of SIMs. The throughput figure is the rate
at the largest size beside the rate at the smallest, for the same events.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import events, store_copies
from bench.environment import BenchEnvironment, BenchError
from bench.kafka_io import produce, watch_commits
from bench.procstat import cpu_seconds
from bench.profiling import Profiler
from bench.report import Figure
from bench.rss_sampler import RssSampler, high_water_mib, rollup_kib, rss_mib
from bench.sizes import Sizes
from simguard.settings import Settings
from simguard.store import open_store

TARGET_MIB = 256
MILLION = 1_000_000
# The throughput figure: at this many SIMs, this share of the smallest store's rate.
NATIONAL_SCALE_SIMS = 10 * MILLION
THROUGHPUT_SHARE_TARGET = 0.6
OBSERVATIONS_PER_TEMPLATE_SIM = 1
# The events sent at each size: these shares re-register or re-activate a SIM,
# the rest are network observations (the bulk of real traffic).
REGISTRATION_SHARE = 0.15
ACTIVATION_SHARE = 0.15
# Observations are spread over the ten minutes before they are sent.
OBSERVATION_SPREAD_SECONDS = 600
# After /healthz answers, the worker has joined its group and polls: a moment
# more lets its first fetches settle before the idle reading.
IDLE_SETTLE_SECONDS = 1.0


@dataclass
class Reading:
    """One size: the store, and the worker's memory while it worked on it."""

    sims: int
    store_mib: float
    copy_seconds: float
    idle_mib: float
    peak_mib: float
    sampled_peak_mib: float
    end_mib: float
    anonymous_mib: float
    file_mib: float
    events: int
    seconds: float
    worker_cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        rate = self.rate
        cpu_us = self.worker_cpu_seconds / max(self.events, 1) * 1e6
        return (
            f"{self.sims:,} SIMs (store {self.store_mib:,.0f} MiB, copied in "
            f"{self.copy_seconds:.0f} s): RSS idle {self.idle_mib:.0f} MiB, peak "
            f"{self.peak_mib:.0f} MiB (highest 0.25 s sample {self.sampled_peak_mib:.0f} MiB), "
            f"end {self.end_mib:.0f} MiB (at the end: anonymous "
            f"{self.anonymous_mib:.0f} MiB, file-backed {self.file_mib:.0f} MiB); "
            f"{self.events:,} events applied in {self.seconds:.1f} s ({rate:,.0f}/s), "
            f"worker CPU {cpu_us:,.0f} µs per event"
        )


def run(env: BenchEnvironment, sizes: Sizes, profiler: Profiler) -> list[Figure]:
    del profiler
    settings = env.settings("memory")
    inputs = [
        settings.topic_registrations,
        settings.topic_activations,
        settings.topic_network_events,
    ]
    template_sims = sizes.memory_template_sims
    store = env.database_path(settings)
    template = store.with_name(f"{store.stem}-template.db")
    began = time.monotonic()
    template_events = _write_template(env, settings, inputs, template_sims, sizes)
    template_seconds = time.monotonic() - began
    committed = template_events
    save_copy(store, template)
    checked = store_copies.Template.check(template, template_sims)
    readings = []
    populated = template_sims
    for sims in sizes.memory_store_sims:
        if sims % template_sims or sims < populated:
            raise BenchError(f"{sims:,} SIMs is not a larger multiple of the template's")
        began = time.monotonic()
        store_copies.add_copies(
            store, checked, range(populated // template_sims, sims // template_sims),
            settings.topic_partitions,
        )  # fmt: skip
        populated = sims
        reading = _measure(env, settings, inputs, sims, sizes, committed, time.monotonic() - began)
        committed += reading.events
        readings.append(reading)
    return [
        _figure(settings, readings, template_sims, template_events, template_seconds, sizes),
        _throughput_figure(readings),
    ]


def _write_template(
    env: BenchEnvironment, settings: Settings, inputs: list[str], sims: int, sizes: Sizes
) -> int:
    """A real worker applies the template SIMs' events; returns how many."""
    records = template_records(settings, sims, OBSERVATIONS_PER_TEMPLATE_SIM, datetime.now(UTC))
    worker, _ = env.start_worker(settings, "bench-memory-template")
    try:
        produce(settings, records)
        progress = watch_commits(
            settings, inputs, len(records), timeout=sizes.worker_max_seconds * 2,
            alive=worker.running,
        )  # fmt: skip
        if not progress.done:
            raise BenchError(
                f"the worker did not apply the template's {len(records):,} events in time:\n"
                f"{worker.log_tail()}"
            )
    finally:
        env.stop(worker)
    return len(records)


def template_records(
    settings: Settings, sims: int, observations_per_sim: int, now: datetime
) -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value) of the template SIMs' events: a registration, an
    activation and `observations_per_sim` network observations each."""
    kinds_and_events = [
        *events.activations_and_registrations(0, sims, now),
        *(("network_events", e) for e in events.observations(0, sims, observations_per_sim, now)),
    ]
    return _records(settings, kinds_and_events)


def _records(
    settings: Settings, kinds_and_events: Iterable[tuple[str, dict[str, Any]]]
) -> list[tuple[str, bytes, bytes]]:
    topics = settings.topics()
    return [
        (topics[kind], event["imsi"].encode(), events.json_bytes(event))
        for kind, event in kinds_and_events
    ]


def save_copy(store: Path, template: Path) -> None:
    """A consistent copy of `store` (SQLite's backup: the WAL's pages included)."""
    source, target = sqlite3.connect(store), sqlite3.connect(template)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def touching_events(sims: int, count: int, now: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, event) for SIMs drawn at random from all `sims` in the store."""
    draw = random.Random(sims)
    for sequence in range(count):
        n = draw.randrange(sims)
        share = draw.random()
        at = now - timedelta(seconds=draw.randrange(OBSERVATION_SPREAD_SECONDS))
        if share < REGISTRATION_SHARE:
            yield "registrations", events.registration_wire(n, at)
        elif share < REGISTRATION_SHARE + ACTIVATION_SHARE:
            yield "activations", events.activation(n, at)
        else:
            # Numbered past the template's, so they are new sightings.
            yield (
                "network_events",
                events.observation(n, OBSERVATIONS_PER_TEMPLATE_SIM + sequence, at),
            )


def _store_mib(store: Path) -> float:
    files = (store, store.with_name(store.name + "-wal"))
    return sum(path.stat().st_size for path in files if path.exists()) / 2**20


def _measure(
    env: BenchEnvironment,
    settings: Settings,
    inputs: list[str],
    sims: int,
    sizes: Sizes,
    committed: int,
    copy_seconds: float,
) -> Reading:
    records = _records(settings, touching_events(sims, sizes.memory_events, datetime.now(UTC)))
    store_mib = _store_mib(env.database_path(settings))
    worker, _ = env.start_worker(settings, f"bench-memory-{sims}")
    try:
        time.sleep(IDLE_SETTLE_SECONDS)
        idle_mib = rss_mib(worker.pid)
        cpu_before = cpu_seconds(worker.pid)
        with RssSampler(worker.pid) as sampler:
            began = time.monotonic()
            produce(settings, records)
            progress = watch_commits(
                settings, inputs, committed + len(records),
                timeout=sizes.worker_max_seconds * 2, alive=worker.running,
            )  # fmt: skip
            seconds = time.monotonic() - began
        if not progress.done:
            raise BenchError(
                f"the worker did not apply {len(records):,} events at {sims:,} SIMs in time:\n"
                f"{worker.log_tail()}"
            )
        rollup = rollup_kib(worker.pid)
        reading = Reading(
            sims=sims,
            store_mib=store_mib,
            copy_seconds=copy_seconds,
            idle_mib=idle_mib,
            peak_mib=high_water_mib(worker.pid),
            sampled_peak_mib=sampler.sampled_peak_mib,
            end_mib=rss_mib(worker.pid),
            anonymous_mib=rollup.get("Anonymous", 0) / 1024,
            file_mib=(rollup.get("Rss", 0) - rollup.get("Anonymous", 0)) / 1024,
            events=len(records),
            seconds=seconds,
            worker_cpu_seconds=cpu_seconds(worker.pid) - cpu_before,
        )
    finally:
        env.stop(worker)
    return reading


def _observations_text() -> str:
    if OBSERVATIONS_PER_TEMPLATE_SIM == 1:
        return "a network observation"
    return f"{OBSERVATIONS_PER_TEMPLATE_SIM} network observations"


def _store_settings(settings: Settings) -> str:
    """The memory settings the worker's store connection runs with, as it sets them."""
    store = open_store(settings.database_url, migrate=False)
    try:
        with store.reading() as tx:
            cache = tx.fetchone("PRAGMA cache_size")
            mmap = tx.fetchone("PRAGMA mmap_size")
    finally:
        store.close()
    assert cache is not None and mmap is not None
    # A negative cache_size is in KiB, a positive one in pages.
    cache_text = f"{-cache[0] / 1024:.0f} MiB" if cache[0] < 0 else f"{cache[0]} pages"
    return (
        f"SQLite page cache {cache_text}, mmap_size {mmap[0]}, poll batches of "
        f"{settings.worker_max_batch_records}"
    )


def _throughput_figure(readings: list[Reading]) -> Figure:
    """The rate at the largest store beside the rate at the smallest, same events."""
    first, largest = readings[0], readings[-1]
    ratio = largest.rate / first.rate if first.rate > 0 else 0.0
    figure = Figure(
        key="worker_rate_at_store_size",
        label="worker throughput as the store grows",
        unit="events/s",
        value=largest.rate,
        text=f"{largest.rate:,.0f}/s at {_sims_text(largest.sims)} SIMs",
        baseline=first.rate,
        baseline_text=f"{first.rate:,.0f}/s",
        baseline_label=f"the same worker on {_sims_text(first.sims)} SIMs",
        target=f"≥ {THROUGHPUT_SHARE_TARGET:.0%} of the rate at {_sims_text(first.sims)}",
        met=ratio >= THROUGHPUT_SHARE_TARGET if largest.sims >= NATIONAL_SCALE_SIMS else None,
    )
    figure.method = (
        "The runs of the memory figure: at each size the same number of events of SIMs drawn "
        "at random from the whole store, the rate from the first send to the last commit."
    )
    figure.details = [
        f"{r.sims:,} SIMs: {r.rate:,.0f}/s, worker CPU "
        f"{r.worker_cpu_seconds / max(r.events, 1) * 1e6:,.0f} µs per event "
        f"(store {r.store_mib:,.0f} MiB)"
        for r in readings
    ]
    if largest.sims < NATIONAL_SCALE_SIMS:
        figure.details.insert(
            0, f"not judged: the store held {largest.sims:,} SIMs, not 10 M (smoke sizes)"
        )
    return figure


def _sims_text(sims: int) -> str:
    if sims >= MILLION and sims % MILLION == 0:
        return f"{sims // MILLION} M"
    if sims >= 1000 and sims % 1000 == 0:
        return f"{sims // 1000} k"
    return f"{sims:,}"


def _figure(
    settings: Settings,
    readings: list[Reading],
    template_sims: int,
    template_events: int,
    template_seconds: float,
    sizes: Sizes,
) -> Figure:
    # Judged at a million SIMs, the size it is named for, when the run has it.
    judged = next((r for r in readings if r.sims == MILLION), readings[-1])
    figure = Figure(
        key="worker_memory",
        label="worker memory per 1 M active SIMs (RSS)",
        unit="MiB",
        value=judged.peak_mib,
        text=f"{judged.peak_mib:.0f} MiB peak",
        target=f"≤ {TARGET_MIB} MiB",
        met=judged.peak_mib <= TARGET_MIB if judged.sims >= MILLION else None,
    )
    sizes_text = " and ".join(f"{r.sims:,}" for r in readings)
    store_settings = _store_settings(settings)
    figure.method = (
        f"Measured, not projected. A `simguard worker` applies the events of {template_sims:,} "
        f"SIMs (a registration, an activation five minutes later, one in ten by a dealer, "
        f"and {_observations_text()} each) and is stopped; its "
        "SQLite store's per-SIM rows (SIM states, registrations and their history, the "
        "idempotency ledger, dealer activations, deadlines) are then copied inside SQLite "
        "(INSERT ... SELECT, bench/store_copies.py) with every identifier rewritten to the "
        "copy's SIM (IMSI, ICCID, MSISDN, holder ref, dealer, event ids, shard, case record "
        f"ids), until the store holds {sizes_text} SIMs. At each size a fresh `simguard worker` "
        f"starts on the store ({store_settings}); VmRSS is read from /proc/PID/status once "
        "it is ready (idle), every 0.25 s "
        f"while it applies {sizes.memory_events:,} events of SIMs drawn at random from the "
        f"whole store ({REGISTRATION_SHARE:.0%} re-registrations, {ACTIVATION_SHARE:.0%} "
        "activations, the rest observations; sent straight to the input topics while it "
        "runs), and when it has committed them all; the peak is the kernel's VmHWM. The "
        "figure is the peak at 1 M SIMs."
    )
    figure.details = [reading.describe() for reading in readings]
    figure.details.append(
        f"template: {template_events:,} events applied by the worker in "
        f"{template_seconds:.0f} s (start-up included)"
    )
    if len(readings) > 1:
        first = readings[0]
        last = readings[-1]
        growth = last.peak_mib - first.peak_mib
        figure.details.append(
            f"from {first.sims:,} to {last.sims:,} SIMs the peak changes by {growth:+.0f} MiB "
            f"and the RSS at the end by {last.end_mib - first.end_mib:+.0f} MiB, while the "
            f"store grows {last.store_mib / max(first.store_mib, 1e-9):.0f}-fold"
        )
    if judged.sims < MILLION:
        figure.details.insert(
            0, f"not judged: the store held {judged.sims:,} SIMs, not 1 M (smoke sizes)"
        )
    return figure
