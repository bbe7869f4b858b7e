"""`simguard bench`: start a broker and simguard's processes, run each
benchmark for a bounded time and size, print the figures beside their
baselines and write them to bench/RESULTS.md.

The benchmark modules are imported when the command runs, not when the CLI
loads, so that every other `simguard` subcommand starts as fast as before."""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from bench.sizes import FULL, QUICK

# Name -> module with `run(environment, sizes, profiler) -> list[Figure]`, in
# the order they run: the short ones first, so a broken set-up shows early.
BENCHMARKS: dict[str, str] = {
    "api": "bench.ingest",
    "worker": "bench.throughput",
    "latency": "bench.latency",
    "memory": "bench.memory",
    "registry": "bench.registry",
    "kafka-security": "bench.kafka_security",
    "storage": "bench.storage",
}
DEFAULT_OUT = Path(__file__).with_name("RESULTS.md")


SOAK_BEGIN, SOAK_END = "<!-- soak:begin -->", "<!-- soak:end -->"


def _soak_section(path: Path) -> str:
    """The soak run's figures (written by `simguard soak`) survive a new bench run."""
    if not path.exists():
        return ""
    text = path.read_text()
    begin, end = text.find(SOAK_BEGIN), text.find(SOAK_END)
    if begin < 0 or end < begin:
        return ""
    return "\n" + text[begin : end + len(SOAK_END)] + "\n"


def _selected(only: tuple[str, ...]) -> list[str]:
    names = [name.strip() for value in only for name in value.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise click.BadParameter(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})",
            param_hint="--only",
        )
    return [name for name in BENCHMARKS if not names or name in names]


@click.command("bench")
@click.option("--quick", is_flag=True, help="Seconds-long smoke sizes instead of the full run.")
@click.option(
    "--only",
    multiple=True,
    metavar="NAME",
    help=f"Run only these benchmarks (repeat or comma-separate): {', '.join(BENCHMARKS)}.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUT,
    show_default="bench/RESULTS.md",
    help="Where to write the results (Markdown).",
)
@click.option(
    "--profile/--no-profile",
    default=True,
    help="Record py-spy profiles of the API, the worker and the import (if py-spy is installed).",
)
@click.option("--keep", is_flag=True, help="Keep the temporary directory (logs, stores, CSVs).")
@click.option(
    "--worker-store",
    metavar="URL",
    help="Run the worker benchmark on new databases of this PostgreSQL server "
    "(postgresql://user@host:port) instead of SQLite files.",
)
def bench(
    quick: bool,
    only: tuple[str, ...],
    out: Path,
    profile: bool,
    keep: bool,
    worker_store: str | None,
) -> None:
    """Benchmark ingest, worker throughput, latency, memory and the registry
    on this machine, each beside a baseline measured in the same run."""
    from bench.environment import BenchEnvironment
    from bench.profiling import Profiler
    from bench.report import Figure, RunReport, console_table, machine_facts, markdown, now
    from simguard.broker_config import BrokerError

    names = _selected(only)
    sizes = QUICK if quick else FULL
    started = time.monotonic()
    report = RunReport(
        mode=sizes.name,
        command=_command_text(click.get_current_context().params),
        started_at=now(),
    )
    environment = BenchEnvironment(keep=keep, worker_store=worker_store)
    try:
        report.machine = machine_facts(environment.kafka_version())
    except BrokerError as error:
        # No Kafka jars: nothing has started yet, and the work dir goes too.
        environment.close()
        raise click.ClickException(str(error)) from None
    profiler = Profiler(profile, environment.root, environment.record)
    if profile and not profiler.enabled:
        click.echo("py-spy not found next to this Python: running without profiles", err=True)
    click.echo(f"simguard bench ({sizes.name}): {', '.join(names)}; work dir {environment.root}")
    try:
        click.echo("starting a local Kafka broker …")
        environment.start_broker()
        for name in names:
            click.echo(f"\n[{name}] running …")
            began = time.monotonic()
            try:
                benchmark = importlib.import_module(BENCHMARKS[name])
                figures: list[Figure] = benchmark.run(environment, sizes, profiler)
            except Exception as error:  # one broken benchmark must not hide the others
                click.echo(traceback.format_exc(), err=True)
                figures = [
                    Figure(
                        key=name,
                        label=f"{name} benchmark",
                        unit="",
                        method=f"failed: {type(error).__name__}: {error}",
                    )
                ]
            report.figures += figures
            click.echo(console_table(figures))
            click.echo(f"[{name}] {time.monotonic() - began:.0f} s")
    finally:
        environment.close()
        report.commands = environment.commands
        report.profiles = profiler.summaries
        report.elapsed_seconds = time.monotonic() - started
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(markdown(report) + _soak_section(out))
    click.echo("\n" + console_table(report.figures))
    click.echo(f"\nwritten to {out} ({report.elapsed_seconds / 60:.1f} min)")
    if keep:
        click.echo(f"kept {environment.root}")
    if any(figure.value is None for figure in report.figures):
        sys.exit(1)


def _command_text(options: Mapping[str, Any]) -> str:
    """The command line as typed, from click's parsed options (defaults left out)."""
    words = ["simguard", "bench"]
    words += ["--quick"] if options["quick"] else []
    words += [f"--only {name}" for name in options["only"]]
    words += [] if options["out"] == DEFAULT_OUT else [f"--out {options['out']}"]
    words += [] if options["profile"] else ["--no-profile"]
    words += ["--keep"] if options["keep"] else []
    store = options["worker_store"]
    words += [f"--worker-store {store}"] if store else []
    return " ".join(words)
