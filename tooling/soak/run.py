"""One soak run: start, load, restart the worker on schedule, drain, verify."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from tooling.soak.load import Load
from tooling.soak.measure import LagGauge, verify
from tooling.soak.plan import SAMPLE_SECONDS, Sample, SoakPlan, SoakResult
from tooling.soak.stack import Stack


def run_soak(plan: SoakPlan, command: str, root: Path, echo: Any = click.echo) -> SoakResult:
    result = SoakResult(plan, command, datetime.now(UTC))
    echo(f"soak: {plan.minutes:g} min at {plan.rate_per_second:,.0f} events/s; work dir {root}")
    stack = Stack(root, plan)
    load: Load | None = None
    gauge: LagGauge | None = None
    try:
        load = Load(stack, plan)
        first = load.first_chunk()
        stack.use_border_cells(first["border_cells"])
        stack.start()
        gauge = LagGauge(stack.settings)
        echo(f"broker {stack.node.bootstrap}, API {stack.api_url}, worker :{stack.worker_port}")
        began = time.monotonic()
        load.start(first)
        _drive(stack, load, gauge, plan, result, began, echo)
        load.stop()
        result.load_seconds = time.monotonic() - began
        result.drain_seconds = _wait_for_zero_lag(gauge, plan, result, began, stack, echo)
        settings = stack.settings
        inputs = [settings.topic_activations, settings.topic_registrations]
        result.input_records = gauge.records([*inputs, settings.topic_network_events])
        result.dead_letters = gauge.records([settings.topic_dead_letter])
        tally = load.tally
        with tally.lock:
            acked_ids = set(tally.acked_ids)
            result.sent, result.requests = tally.sent, tally.requests
            result.refused_503 = tally.refused_503
            result.connection_errors = tally.connection_errors
            result.failures = list(tally.failures)
        echo("verifying: ledger against the acknowledged event_ids, then the regulator topic")
        result.verdict = verify(settings, acked_ids)
    finally:
        if load is not None:
            load.stop()
        if gauge is not None:
            gauge.close()
        result.restarts = stack.restarts
        result.worker_peaks_mib = stack.worker_peaks_mib
        stack.stop()
    return result


def _drive(
    stack: Stack,
    load: Load,
    gauge: LagGauge,
    plan: SoakPlan,
    result: SoakResult,
    began: float,
    echo: Any,
) -> None:
    ends_at = began + plan.minutes * 60
    next_sample = began
    next_restart = began + plan.restart_every_seconds
    while (now := time.monotonic()) < ends_at:
        if now >= next_restart and next_restart < ends_at:
            restart = stack.restart_worker()
            next_restart += plan.restart_every_seconds
            echo(
                f"  worker restarted: drained in {restart.drain_seconds:.1f} s "
                f"(exit {restart.exit_code}), ready in {restart.ready_seconds:.1f} s"
            )
        if now >= next_sample:
            sample = _sample(stack, load, gauge, now - began)
            result.samples.append(sample)
            next_sample += SAMPLE_SECONDS
            if len(result.samples) % 6 == 1:
                echo(_sample_line(sample))
        time.sleep(max(min(next_sample, next_restart, ends_at) - time.monotonic(), 0.05))


def _sample(stack: Stack, load: Load, gauge: LagGauge, elapsed: float) -> Sample:
    worker_mib, api_mib = stack.rss_mib()
    with load.tally.lock:
        sent, acked = load.tally.sent, load.tally.acked
    return Sample(elapsed, worker_mib, api_mib, gauge.lag(), sent, acked)


def _sample_line(sample: Sample) -> str:
    return (
        f"  {sample.elapsed_seconds:6.0f} s  sent {sample.sent:>9,}  acked {sample.acked:>9,}  "
        f"lag {sample.lag:>7,}  RSS worker {sample.worker_rss_mib:5.0f} MiB  "
        f"API {sample.api_rss_mib:5.0f} MiB"
    )


def _wait_for_zero_lag(
    gauge: LagGauge, plan: SoakPlan, result: SoakResult, began: float, stack: Stack, echo: Any
) -> float | None:
    echo("load stopped; waiting for the worker to catch up")
    stopped = time.monotonic()
    while True:
        lag = gauge.lag()
        now = time.monotonic()
        result.final_lag = lag
        worker_mib, api_mib = stack.rss_mib()
        result.samples.append(Sample(now - began, worker_mib, api_mib, lag, -1, -1))
        if lag == 0:
            return now - stopped
        if now - stopped > plan.drain_timeout_seconds:
            echo(f"  lag still {lag:,} after {plan.drain_timeout_seconds:.0f} s")
            return None
        time.sleep(2.0)
