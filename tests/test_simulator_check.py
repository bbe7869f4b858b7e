"""Scoring a register against the truth, and reading the register from the
regulator topic the way a regulator does: the latest record per SIM."""

from __future__ import annotations

import orjson
from factories import valid_case_record
from kafka_helpers import MakeSettings, produce_raw

from tooling.simulator.check import check
from tooling.simulator.truth import (
    BULK_ACTIVATION_BURST,
    HIGH_RISK_ROAMING,
    UNREGISTERED,
    score,
)

A, B, C, D = (f"5200300000000{n:02d}" for n in range(1, 5))


def _by_code(result: object) -> dict[str, tuple[int, int, int]]:
    reasons = getattr(result, "reasons", ())
    return {
        r.code: (r.true_positives, r.false_positives, r.false_negatives)
        for r in reasons
        if r.true_positives or r.false_positives or r.false_negatives
    }


def test_each_reason_is_scored_on_its_own() -> None:
    truth = {A: frozenset({UNREGISTERED, HIGH_RISK_ROAMING}), B: frozenset({UNREGISTERED})}
    flagged = {A: {UNREGISTERED}, C: {BULK_ACTIVATION_BURST}}
    result = score(truth, flagged)
    assert _by_code(result) == {
        UNREGISTERED: (1, 0, 1),
        HIGH_RISK_ROAMING: (0, 0, 1),
        BULK_ACTIVATION_BURST: (0, 1, 0),
    }
    by_code = {r.code: r for r in result.reasons}
    assert by_code[UNREGISTERED].precision == 1.0
    assert by_code[UNREGISTERED].recall == 0.5
    assert by_code[BULK_ACTIVATION_BURST].precision == 0.0
    assert not result.perfect
    assert result.false_negative_sample[UNREGISTERED] == [B]


def test_a_reason_neither_expected_nor_flagged_scores_one() -> None:
    result = score({A: frozenset({UNREGISTERED})}, {A: {UNREGISTERED}})
    assert result.perfect
    assert all((r.precision, r.recall) == (1.0, 1.0) for r in result.reasons)
    assert "UNREGISTERED" in result.table()


def test_flags_outside_the_population_are_counted_apart() -> None:
    result = score({A: frozenset({UNREGISTERED})}, {A: {UNREGISTERED}, D: {UNREGISTERED}}, {A, B})
    assert result.perfect
    assert result.ignored_sims == 1


def _case(imsi: str, version: int, codes: list[str]) -> bytes:
    reasons = [{"code": code, "since": "2026-11-02T03:15:00Z", "evidence": {}} for code in codes]
    record = valid_case_record(
        imsi=imsi,
        version=version,
        status="flagged" if codes else "cleared",
        reasons=reasons,
        risk_score=min(100, 40 * len(codes)),
    )
    return orjson.dumps(record)


def test_check_scores_the_latest_case_of_each_sim(make_settings: MakeSettings) -> None:
    settings = make_settings()
    records = [
        (A, _case(A, 1, [UNREGISTERED])),
        (B, _case(B, 1, [UNREGISTERED])),
        (B, _case(B, 2, [])),  # cleared: B ends unflagged
        (C, _case(C, 1, [HIGH_RISK_ROAMING])),
    ]
    for imsi, value in records:
        produce_raw(settings, settings.topic_flagged, imsi, value)

    matching = check(settings, {A: frozenset({UNREGISTERED}), C: frozenset({HIGH_RISK_ROAMING})})
    assert matching.perfect and matching.settled
    assert matching.records_read == 4

    missing_b = check(settings, {A: frozenset({UNREGISTERED}), B: frozenset({UNREGISTERED})}, 3)
    assert not missing_b.settled
    assert _by_code(missing_b.score) == {UNREGISTERED: (1, 0, 1), HIGH_RISK_ROAMING: (0, 1, 0)}
