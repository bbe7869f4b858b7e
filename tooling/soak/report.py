"""The soak section of bench/RESULTS.md."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from tooling.soak.plan import RESULTS_BEGIN, RESULTS_END, SAMPLE_SECONDS, Sample, SoakResult


def _memory_row(name: str, values: list[float], peak: float | None = None) -> str:
    if not values:
        return f"| {name} | — | — | — |"
    top = max(values) if peak is None else max(peak, *values)
    return f"| {name} | {values[0]:.0f} | {values[-1]:.0f} | {top:.0f} |"


def markdown(result: SoakResult) -> str:
    plan, verdict = result.plan, result.verdict
    loaded = [s for s in result.samples if s.sent >= 0]
    drain = (
        f"{result.drain_seconds:.0f} s after the load stopped"
        if result.drain_seconds is not None
        else f"NOT reached within {plan.drain_timeout_seconds:.0f} s"
    )
    drains = [r.drain_seconds for r in result.restarts]
    exits = sorted({str(r.exit_code) for r in result.restarts})
    out = [
        "## Soak",
        "",
        f"- run: {result.started_at.strftime('%Y-%m-%d %H:%M UTC')}, command `{result.command}`, "
        f"**{'PASSED' if result.passed else 'FAILED'}**",
        f"- machine: {os.cpu_count()} cores, load average at the end "
        + " ".join(f"{v:.2f}" for v in os.getloadavg()),
        f"- load: {result.load_seconds / 60:.1f} min of the simulator's mix (registrations, "
        f"activations, network events) at a target of {plan.rate_per_second:,.0f} events/s in "
        f"batches of up to {plan.batch_events}; achieved {result.acked_rate:,.0f} events/s "
        "acknowledged",
        f"- events: sent {result.sent:,}, acknowledged (202) "
        f"{verdict.acked if verdict else 0:,}, applied (ledger) "
        f"{verdict.applied if verdict else 0:,}, acknowledged but not applied "
        f"{verdict.missing if verdict else '—'}; {result.input_records:,} records on the input "
        f"topics ({result.input_records - (verdict.applied if verdict else 0):,} duplicates from "
        f"resends); {result.requests:,} requests, {result.refused_503} answered 503, "
        f"{result.connection_errors} unanswered; dead letters {result.dead_letters}",
        f"- worker restarts (SIGTERM, then start): {len(result.restarts)}, every "
        f"{plan.restart_every_seconds:.0f} s; drain {max(drains, default=0):.1f} s at most, "
        f"exit codes {', '.join(exits) or '—'}",
        f"- consumer lag (records, input topics): max "
        f"{max((s.lag for s in result.samples), default=0):,}, final {result.final_lag:,}, "
        f"zero {drain}",
    ]
    if verdict is not None:
        out.append(
            f"- regulator topic: {verdict.case_records:,} case records for "
            f"{verdict.sims_with_cases:,} SIMs; (imsi, version) with two contents: "
            f"{verdict.conflicting_versions}; seen twice: {verdict.repeated_records}; SIMs with "
            f"a gap in their versions: {verdict.gapped_sims}"
        )
    out += [
        f"- UNREGISTERED grace shortened to {plan.grace_seconds} s so that deadlines fire "
        "(and survive restarts) during the run",
        "",
        "| memory (VmRSS, MiB) | start | end | max |",
        "|---|---|---|---|",
        _memory_row(
            "worker (max: peak VmHWM of any incarnation)",
            [s.worker_rss_mib for s in result.samples],
            max(result.worker_peaks_mib, default=None),
        ),
        _memory_row("API (gunicorn master + 2 workers)", [s.api_rss_mib for s in result.samples]),
        "",
        "| minute | acknowledged events/s | lag at the end | worker RSS | API RSS |",
        "|---|---|---|---|---|",
    ]
    previous = Sample(0.0, 0.0, 0.0, 0, 0, 0)
    for minute in range(1, math.ceil(result.load_seconds / 60) + 1):
        window = [s for s in loaded if s.elapsed_seconds <= minute * 60 + SAMPLE_SECONDS / 2]
        if not window or window[-1] is previous:
            continue
        last = window[-1]
        span = last.elapsed_seconds - previous.elapsed_seconds
        rate = (last.acked - previous.acked) / span if span > 0 else 0.0
        out.append(
            f"| {minute} | {rate:,.0f} | {last.lag:,} | {last.worker_rss_mib:.0f} | "
            f"{last.api_rss_mib:.0f} |"
        )
        previous = last
    if result.failures:
        out += ["", "Refused batches:", "", *[f"- {f}" for f in result.failures[:10]]]
    return "\n".join(out) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace what lies between the soak markers (appended when missing);
    the rest of the file belongs to the benchmark."""
    block = f"{RESULTS_BEGIN}\n{section}{RESULTS_END}"
    text = path.read_text() if path.exists() else ""
    pattern = re.compile(re.escape(RESULTS_BEGIN) + r".*?" + re.escape(RESULTS_END), re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _: block, text, count=1)
    else:
        text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
