"""What a partner regulator is told about a SIM's new case version, on the pure
function: shared reasons only, keyed pseudonyms, withdrawals."""

from __future__ import annotations

from typing import Any

from factories import valid_case_record

from simguard.settings import PartnerPolicy
from workers.early_warning import PartnerLink, indicator

WEIGHTS = {"HIGH_RISK_ROAMING": 30, "ACTIVATED_THEN_ABROAD": 35, "IDENTITY_OVER_LIMIT": 30}
SECRET = "p" * 40
ROAMING = PartnerPolicy(frozenset({"HIGH_RISK_ROAMING", "ACTIVATED_THEN_ABROAD"}), min_risk=30)


def case(*codes: str, status: str = "flagged", version: int = 2) -> dict[str, Any]:
    reasons = [
        {"code": code, "since": f"2026-12-0{index + 1}T00:00:00Z", "evidence": {"holder": "x"}}
        for index, code in enumerate(codes)
    ]
    return valid_case_record(reasons=reasons, status=status, version=version)


def told(record: dict[str, Any], policy: PartnerPolicy = ROAMING, before: bool = False) -> Any:
    return indicator(PartnerLink.of("KH", policy, SECRET), record, WEIGHTS, "TH", before)


def test_a_case_with_shared_reasons_tells_their_codes_risk_and_since_only() -> None:
    sent = told(case("IDENTITY_OVER_LIMIT", "HIGH_RISK_ROAMING", "ACTIVATED_THEN_ABROAD"))
    assert sent["status"] == "flagged"
    assert sent["reasons"] == ["ACTIVATED_THEN_ABROAD", "HIGH_RISK_ROAMING"]
    assert sent["risk"] == 65
    assert sent["since"] == "2026-12-02T00:00:00Z"
    assert sent["case_version"] == 2
    assert set(sent) == {
        "schema_version",
        "subject_type",
        "subject",
        "home_country",
        "status",
        "reasons",
        "risk",
        "since",
        "case_version",
        "updated_at",
    }


def test_the_subject_is_a_pseudonym_keyed_per_partner_unless_the_imsi_is_agreed() -> None:
    record = case("HIGH_RISK_ROAMING")
    kh = told(record)["subject"]
    ph = indicator(PartnerLink.of("PH", ROAMING, SECRET), record, WEIGHTS, "TH", False)
    assert kh != record["imsi"] and len(kh) == 64
    assert ph is not None and ph["subject"] != kh
    by_imsi = PartnerPolicy(ROAMING.reasons, 30, subject="imsi")
    assert told(record, by_imsi)["subject"] == record["imsi"]


def test_a_case_without_shared_reasons_tells_nothing() -> None:
    assert told(case("IDENTITY_OVER_LIMIT")) is None


def test_shared_reasons_below_the_minimum_risk_tell_nothing() -> None:
    strict = PartnerPolicy(ROAMING.reasons, min_risk=40)
    assert told(case("HIGH_RISK_ROAMING"), strict) is None
    assert told(case("HIGH_RISK_ROAMING", "ACTIVATED_THEN_ABROAD"), strict) is not None


def test_a_partner_told_before_is_told_the_withdrawal_when_the_case_clears() -> None:
    withdrawn = told(case(status="cleared", version=3), before=True)
    assert (withdrawn["status"], withdrawn["reasons"], withdrawn["case_version"]) == (
        "withdrawn",
        [],
        3,
    )
    assert told(case(status="cleared", version=3), before=False) is None


def test_losing_the_shared_reasons_while_still_flagged_is_a_withdrawal() -> None:
    assert told(case("IDENTITY_OVER_LIMIT"), before=True)["status"] == "withdrawn"
