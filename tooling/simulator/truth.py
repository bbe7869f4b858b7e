"""Ground truth: which SIMs the register must end with, for which reasons, and
how a register is scored against it (per reason: TP, FP, FN, precision, recall).

The truth is the set of reason codes that must be ACTIVE on each SIM once
every event has been applied (DESIGN.md's semantics); a SIM absent from it
must end unflagged (no record, or a `cleared` one). It is stated by the actors
that produced the events, not recomputed from them, so it tests the rules
rather than repeating them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from schemas.case_record import REASON_CODES
from schemas.reason_codes import ReasonCode

UNREGISTERED: Final = ReasonCode.UNREGISTERED.value
IDENTITY_OVER_LIMIT: Final = ReasonCode.IDENTITY_OVER_LIMIT.value
REGISTRATION_REVOKED: Final = ReasonCode.REGISTRATION_REVOKED.value
ACTIVATED_THEN_ABROAD: Final = ReasonCode.ACTIVATED_THEN_ABROAD.value
HIGH_RISK_ROAMING: Final = ReasonCode.HIGH_RISK_ROAMING.value
BORDER_CELL_DWELL: Final = ReasonCode.BORDER_CELL_DWELL.value
IMPOSSIBLE_TRAVEL: Final = ReasonCode.IMPOSSIBLE_TRAVEL.value
BULK_ACTIVATION_BURST: Final = ReasonCode.BULK_ACTIVATION_BURST.value
SIM_DEVICE_CYCLING: Final = ReasonCode.SIM_DEVICE_CYCLING.value
DEVICE_MANY_SIMS: Final = ReasonCode.DEVICE_MANY_SIMS.value
HIGH_CALL_VOLUME: Final = ReasonCode.HIGH_CALL_VOLUME.value
STATIC_HIGH_VOLUME: Final = ReasonCode.STATIC_HIGH_VOLUME.value

Truth = Mapping[str, frozenset[str]]
# How many mismatching IMSIs per reason a report keeps for a reader to look up.
SAMPLE_SIZE: Final = 10


@dataclass(frozen=True)
class ReasonScore:
    code: str
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """1.0 when nothing was flagged for the reason: no flag was wrong."""
        claimed = self.true_positives + self.false_positives
        return self.true_positives / claimed if claimed else 1.0

    @property
    def recall(self) -> float:
        """1.0 when nothing was expected for the reason: no flag was missed."""
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0


@dataclass(frozen=True)
class Score:
    """A register compared with the truth."""

    reasons: tuple[ReasonScore, ...]
    expected_sims: int
    flagged_sims: int
    # Flagged SIMs outside the simulated population (another run's, or real ones).
    ignored_sims: int
    false_positive_sample: dict[str, list[str]] = field(default_factory=dict)
    false_negative_sample: dict[str, list[str]] = field(default_factory=dict)

    @property
    def perfect(self) -> bool:
        return all(r.false_positives == 0 and r.false_negatives == 0 for r in self.reasons)

    def table(self) -> str:
        header = f"{'reason':<24}{'TP':>7}{'FP':>7}{'FN':>7}{'precision':>11}{'recall':>9}"
        lines = [header, "-" * len(header)]
        for r in self.reasons:
            lines.append(
                f"{r.code:<24}{r.true_positives:>7}{r.false_positives:>7}"
                f"{r.false_negatives:>7}{r.precision:>11.3f}{r.recall:>9.3f}"
            )
        lines.append(
            f"SIMs expected flagged: {self.expected_sims}, flagged: {self.flagged_sims}, "
            f"outside the population: {self.ignored_sims}"
        )
        for title, sample in (
            ("false positives", self.false_positive_sample),
            ("false negatives", self.false_negative_sample),
        ):
            for code, imsis in sample.items():
                lines.append(f"{title} {code}: {', '.join(imsis)}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()


def score(
    truth: Truth, flagged: Mapping[str, Collection[str]], population: Collection[str] | None = None
) -> Score:
    """Compare `flagged` (IMSI -> active codes, flagged SIMs only) with `truth`.

    With `population`, flags on SIMs outside it are counted apart and not
    scored: the regulator topic may carry SIMs the simulation never sent.
    """
    in_scope = {
        imsi: frozenset(codes)
        for imsi, codes in flagged.items()
        if codes and (population is None or imsi in population)
    }
    ignored = sum(1 for imsi, codes in flagged.items() if codes and imsi not in in_scope)
    codes = [
        *REASON_CODES,
        *sorted(
            {c for cs in [*truth.values(), *in_scope.values()] for c in cs} - set(REASON_CODES)
        ),
    ]
    reasons = []
    false_positives: dict[str, list[str]] = {}
    false_negatives: dict[str, list[str]] = {}
    for code in codes:
        expected = {imsi for imsi, wanted in truth.items() if code in wanted}
        actual = {imsi for imsi, held in in_scope.items() if code in held}
        reasons.append(
            ReasonScore(
                code, len(expected & actual), len(actual - expected), len(expected - actual)
            )
        )
        if actual - expected:
            false_positives[code] = sorted(actual - expected)[:SAMPLE_SIZE]
        if expected - actual:
            false_negatives[code] = sorted(expected - actual)[:SAMPLE_SIZE]
    return Score(
        reasons=tuple(reasons),
        expected_sims=sum(1 for wanted in truth.values() if wanted),
        flagged_sims=len(in_scope),
        ignored_sims=ignored,
        false_positive_sample=false_positives,
        false_negative_sample=false_negatives,
    )


@dataclass(frozen=True)
class TruthFile:
    """truth.json: the expected codes, and every IMSI the simulation sent."""

    expected: dict[str, frozenset[str]]
    population: frozenset[str]
    details: dict[str, Any]


def dump_truth(
    path: Path, truth: Truth, population: Iterable[str], details: Mapping[str, Any]
) -> None:
    document = {
        **details,
        "expected": {imsi: sorted(codes) for imsi, codes in sorted(truth.items())},
        "population": sorted(population),
    }
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def load_truth(path: Path) -> TruthFile:
    document = orjson.loads(path.read_bytes())
    if not isinstance(document, dict) or not isinstance(document.get("expected"), dict):
        raise ValueError(f"{path}: not a simulator truth file (no 'expected' object)")
    expected = {str(imsi): frozenset(codes) for imsi, codes in document.pop("expected").items()}
    population = frozenset(str(imsi) for imsi in document.pop("population", expected))
    return TruthFile(expected, population, document)
