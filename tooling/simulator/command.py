"""`simguard simulate`: generate a population, write it, post it, check the register.

    simguard simulate --sims 2000 --seed 7 --out var/sim
    simguard simulate --sims 2000 --seed 7 --border-cells-out var/border_cells.csv \\
        --api http://127.0.0.1:8080 --keys-file keys.json --check
    simguard simulate --check --truth var/sim/truth.json

The rules come from the effective configuration (SIMGUARD_* and the config
file), so the truth follows the deployment's thresholds. Everything heavy is
imported when the command runs, not when `simguard` starts.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from simguard.settings import Settings
    from tooling.simulator.population import Scenario


def _parse_mix(items: tuple[str, ...]) -> dict[str, float]:
    fractions: dict[str, float] = {}
    for item in items:
        kind, _, value = item.partition("=")
        try:
            fractions[kind.strip()] = float(value)
        except ValueError:
            raise click.BadParameter(
                f"{item!r}: expected KIND=FRACTION", param_hint="--mix"
            ) from None
    return fractions


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"{text!r} is not an RFC 3339 time", param_hint="--now") from None
    if moment.utcoffset() is None:
        raise click.BadParameter("give a time zone, e.g. 2026-11-20T03:00:00Z", param_hint="--now")
    return moment


def _read_keys(path: Path) -> dict[str, str]:
    import orjson

    try:
        keys = orjson.loads(path.read_bytes())
    except orjson.JSONDecodeError as exc:
        raise click.BadParameter(f"{path}: not JSON ({exc})", param_hint="--keys-file") from None
    if not isinstance(keys, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in keys.items()
    ):
        raise click.BadParameter(
            f'{path}: expected {{"<operator PLMN id>": "<API key>", ...}}',
            param_hint="--keys-file",
        )
    return keys


@click.command("simulate")
@click.option("--sims", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--now", "now_text", metavar="TIME", help="Reference time (RFC 3339); default: now.")
@click.option(
    "--mix",
    "mix_items",
    multiple=True,
    metavar="KIND=FRACTION",
    help="Share of SIMs for an actor kind (e.g. mule=0.05); ordinary subscribers are the rest.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the events (JSON Lines per kind), truth.json and border_cells.csv here.",
)
@click.option(
    "--border-cells-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the border-cell CSV here: the worker's border_cells_csv must name it.",
)
@click.option(
    "--api", "api_url", metavar="URL", help="POST the events to this API (loopback only)."
)
@click.option(
    "--keys-file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSON {"<operator PLMN id>": "<API key>"} for --api.',
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=500, show_default=True)
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True)
@click.option(
    "--check", "run_check", is_flag=True, help="Score the regulator topic against the truth."
)
@click.option(
    "--truth",
    "truth_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="truth.json of an earlier run, for --check (default: this run's truth).",
)
@click.option(
    "--timeout", type=float, default=120.0, show_default=True, help="--check's limit, seconds."
)
def simulate(
    sims: int,
    seed: int,
    now_text: str | None,
    mix_items: tuple[str, ...],
    out: Path | None,
    border_cells_out: Path | None,
    api_url: str | None,
    keys_file: Path | None,
    batch_size: int,
    concurrency: int,
    run_check: bool,
    truth_path: Path | None,
    timeout: float,
) -> None:
    """Simulate operators' events with the ground truth beside them.

    Posting sends all registrations, then activations, then network events, so
    that registrations reach the worker before their activations' UNREGISTERED
    deadlines.
    """
    from simguard.settings import ConfigError, load_settings

    if truth_path is not None and not run_check:
        raise click.UsageError("--truth is read by --check only")
    if api_url is not None and keys_file is None:
        raise click.UsageError("--api needs --keys-file")
    generating = any(x is not None for x in (out, border_cells_out, api_url)) or (
        run_check and truth_path is None
    )
    if not generating and not run_check:
        raise click.UsageError("nothing to do: give --out, --border-cells-out, --api or --check")
    try:
        settings = load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from exc

    scenario = None
    if generating:
        scenario = _generate(sims, seed, _parse_now(now_text), _parse_mix(mix_items), settings)
        _write(scenario, out, border_cells_out, settings)
        if api_url is not None and keys_file is not None:
            _post(scenario, api_url, _read_keys(keys_file), batch_size, concurrency)
    if run_check:
        _check(settings, scenario, truth_path, timeout)


def _generate(
    sims: int, seed: int, now: datetime, fractions: dict[str, float], settings: Settings
) -> Scenario:
    from tooling.simulator.population import Mix, generate

    try:
        scenario = generate(sims, seed, now, settings.rules, Mix().with_fractions(**fractions))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    actors = ", ".join(f"{kind} {len(imsis)}" for kind, imsis in sorted(scenario.actors.items()))
    events = ", ".join(f"{kind} {count}" for kind, count in scenario.counts().items())
    click.echo(f"generated {sims} SIMs (seed {seed}, now {now.isoformat()})")
    click.echo(f"  actors: {actors}")
    click.echo(f"  events: {events}")
    click.echo(f"  SIMs expected flagged: {len(scenario.truth)}")
    return scenario


def _write(
    scenario: Scenario, out: Path | None, border_cells_out: Path | None, settings: Settings
) -> None:
    from tooling.simulator.files import write, write_border_cells

    if out is not None:
        written = write(scenario, out)
        click.echo(f"wrote {', '.join(str(path) for path in written.values())}")
    if border_cells_out is not None:
        click.echo(f"wrote {write_border_cells(scenario.border_cells, border_cells_out)}")
    if not set(scenario.border_cells) <= settings.rules.border_cells:
        click.echo(
            "note: the configured border_cells_csv does not list the simulated border cells; "
            "BORDER_CELL_DWELL holds only for a worker that loads the CSV written here",
            err=True,
        )


def _post(
    scenario: Scenario, api_url: str, keys: dict[str, str], batch_size: int, concurrency: int
) -> None:
    from tqdm import tqdm

    from tooling.simulator.post import PostError, post

    total = sum(scenario.counts().values())
    with tqdm(total=total, unit="event", file=sys.stderr, disable=None) as bar:

        def advance(kind: str, count: int) -> None:
            bar.update(count)

        try:
            report = post(
                scenario,
                api_url,
                keys,
                batch_size=batch_size,
                concurrency=concurrency,
                progress=advance,
            )
        except PostError as exc:
            click.echo(exc.report.summary(), err=True)
            raise click.ClickException(str(exc)) from exc
        except (ValueError, OSError) as exc:
            raise click.ClickException(str(exc)) from exc
    click.echo(report.summary())


def _check(
    settings: Settings, scenario: Scenario | None, truth_path: Path | None, timeout: float
) -> None:
    from tooling.simulator.check import check
    from tooling.simulator.truth import load_truth

    if truth_path is not None:
        try:
            loaded = load_truth(truth_path)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        truth, population = loaded.expected, loaded.population
    else:
        assert scenario is not None, "generated when no --truth is given"
        truth, population = scenario.truth, scenario.imsis
    report = check(settings, truth, timeout, population=population)
    click.echo(report.table())
    if not report.perfect:
        sys.exit(1)
