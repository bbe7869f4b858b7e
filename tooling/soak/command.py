"""`simguard soak`, the command."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import click

from tooling.soak.plan import RESULTS_BEGIN, RESULTS_END, SoakPlan
from tooling.soak.report import markdown, write_section
from tooling.soak.run import run_soak


@click.command("soak")
@click.option("--minutes", type=click.FloatRange(min=0.5), default=10.0, show_default=True)
@click.option("--rate", type=click.FloatRange(min=1), default=1000.0, show_default=True,
              help="Target events per second.")  # fmt: skip
@click.option("--restart-every", type=click.FloatRange(min=10), default=60.0, show_default=True,
              help="Seconds between worker restarts (SIGTERM, then start).")  # fmt: skip
@click.option("--batch", type=click.IntRange(1, 1000), default=100, show_default=True,
              help="Events per request at most.")  # fmt: skip
@click.option("--grace-seconds", type=click.IntRange(min=1), default=60, show_default=True,
              help="UNREGISTERED grace during the soak (production: 900).")  # fmt: skip
@click.option("--results", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("bench/RESULTS.md"), show_default=True,
              help="Markdown file whose soak section is rewritten.")  # fmt: skip
@click.option("--keep", is_flag=True, help="Keep the work directory (logs, store, broker).")
def soak(
    minutes: float,
    rate: float,
    restart_every: float,
    batch: int,
    grace_seconds: int,
    results: Path,
    keep: bool,
) -> None:
    """Run broker, API and worker at a steady rate for --minutes, restarting
    the worker every minute (at least once); then check that no acknowledged
    event was lost and write the figures to the soak section of --results."""
    plan = SoakPlan(
        minutes=minutes,
        rate_per_second=rate,
        # A quick run still restarts the worker at least once.
        restart_every_seconds=min(restart_every, minutes * 30),
        batch_events=batch,
        grace_seconds=grace_seconds,
        drain_timeout_seconds=max(120.0, minutes * 30),
    )
    command = " ".join(["simguard soak", *sys.argv[2:]]).strip()
    root = Path(tempfile.mkdtemp(prefix="simguard-soak-"))
    result = run_soak(plan, command, root)
    section = markdown(result)
    click.echo("\n" + section)
    write_section(results, section)
    click.echo(f"written to {results} (between {RESULTS_BEGIN} and {RESULTS_END})")
    if keep or not result.passed:
        click.echo(f"work directory kept: {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    if not result.passed:
        sys.exit(1)
