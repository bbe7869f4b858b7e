"""The soak's verdict and its section of bench/RESULTS.md (the run itself is
`make soak`, ten minutes, outside `make test`)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tooling.soak.plan import Restart, Sample, SoakPlan, SoakResult, Verdict
from tooling.soak.report import markdown, write_section

PLAN = SoakPlan(
    minutes=2,
    rate_per_second=100,
    restart_every_seconds=60,
    batch_events=100,
    grace_seconds=60,
    drain_timeout_seconds=120,
)


def _result(missing: int = 0, exit_code: int | None = 0, final_lag: int = 0) -> SoakResult:
    verdict = Verdict(
        acked=12_000,
        applied=12_000 - missing,
        missing=missing,
        case_records=40,
        sims_with_cases=38,
        conflicting_versions=0,
        repeated_records=0,
        gapped_sims=0,
    )
    return SoakResult(
        PLAN,
        "simguard soak --minutes 2",
        datetime(2026, 11, 24, 1, 0, tzinfo=UTC),
        load_seconds=120.0,
        samples=[Sample(5.0 * n, 60.0, 120.0, 10, 100 * n, 100 * n) for n in range(1, 25)],
        restarts=[Restart(0.4, exit_code, 1.2)],
        drain_seconds=3.0,
        final_lag=final_lag,
        input_records=12_000,
        verdict=verdict,
    )


def test_a_clean_run_passes_and_says_so() -> None:
    result = _result()

    assert result.passed
    assert "**PASSED**" in markdown(result)


def test_an_acknowledged_event_missing_from_the_ledger_fails_the_run() -> None:
    result = _result(missing=1)

    assert not result.passed
    assert "**FAILED**" in markdown(result)


def test_a_worker_that_did_not_drain_on_sigterm_fails_the_run() -> None:
    assert not _result(exit_code=None).passed


def test_lag_left_after_the_drain_fails_the_run() -> None:
    assert not _result(final_lag=5).passed


def test_the_soak_section_replaces_its_predecessor_and_keeps_the_benchmark(
    tmp_path: Path,
) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text("# benchmark\n\nfigures\n")

    write_section(results, "## Soak\n\nfirst\n")
    write_section(results, "## Soak\n\nsecond\n")

    text = results.read_text()
    assert text.startswith("# benchmark\n\nfigures\n")
    assert "second" in text
    assert "first" not in text
    assert text.count("<!-- soak:begin -->") == 1
