"""IDENTITY_OVER_LIMIT's caps, on the pure rules: across operators, and with
one operator (lower for a foreign national), from the rules file."""

from __future__ import annotations

from tests.behaviour_events import packaged_rules
from workers.rules.registration import (
    CurrentRegistration,
    HolderSim,
    over_limit_reason,
    over_limit_sims,
)

RULES = packaged_rules()
AIS, DTAC, TRUE = "52003", "52005", "52004"
SINCE = "2026-03-02T00:00:00.000000Z"


def holding(*operators: str, nationality: str = "TH") -> list[HolderSim]:
    """A holder's SIMs in the order they began with the holder, one per operator named."""
    return [
        HolderSim(f"{operator}{index:010d}", operator, nationality)
        for index, operator in enumerate(operators)
    ]


def current(nationality: str = "TH") -> CurrentRegistration:
    return CurrentRegistration(
        "e", "h" * 64, "active", "ekyc", SINCE, SINCE, "e", None, "", nationality
    )


def test_a_thai_holders_five_sims_with_one_operator_are_within_every_cap() -> None:
    assert over_limit_sims(holding(AIS, AIS, AIS, AIS, AIS), RULES) == set()


def test_a_thai_holders_sixth_sim_is_past_the_cap_across_operators() -> None:
    sims = holding(AIS, DTAC, TRUE, AIS, DTAC, TRUE)
    assert over_limit_sims(sims, RULES) == {sims[5].imsi}


def test_a_foreign_holders_fourth_sim_with_one_operator_is_past_its_cap() -> None:
    sims = holding(AIS, AIS, DTAC, AIS, AIS, nationality="MM")
    assert over_limit_sims(sims, RULES) == {sims[4].imsi}


def test_a_foreign_holders_three_sims_with_each_of_two_operators_are_past_the_total_only() -> None:
    sims = holding(AIS, DTAC, AIS, DTAC, AIS, DTAC, nationality="KH")
    assert over_limit_sims(sims, RULES) == {sims[5].imsi}


def test_the_reason_names_the_operator_cap_and_the_sims_place_with_that_operator() -> None:
    sims = holding(AIS, DTAC, AIS, AIS, AIS, nationality="MM")
    reason = over_limit_reason(sims[4].imsi, current("MM"), sims, RULES)
    assert reason is not None
    assert reason.evidence == {
        "holder_ref": "h" * 64,
        "scope": "operator",
        "operator": AIS,
        "holder_nationality": "MM",
        "active_registrations": 4,
        "limit": 3,
        "position": 4,
        "registered_to_holder_since": SINCE,
    }


def test_past_both_caps_the_reason_names_the_cap_across_operators() -> None:
    sims = holding(AIS, AIS, AIS, AIS, AIS, AIS, nationality="MM")
    reason = over_limit_reason(sims[5].imsi, current("MM"), sims, RULES)
    assert reason is not None
    assert (reason.evidence["scope"], reason.evidence["limit"]) == ("all_operators", 5)


def test_a_per_operator_cap_of_zero_is_no_cap() -> None:
    rules = packaged_rules(identity_sim_limit=10, identity_sim_limit_per_operator_foreign=0)
    assert over_limit_sims(holding(*[AIS] * 6, nationality="MY"), rules) == set()


def test_malaysias_caps_from_the_rules_file_two_for_a_non_citizen() -> None:
    rules = packaged_rules(
        home_country="MY",
        identity_sim_limit=10,
        identity_sim_limit_per_operator=5,
        identity_sim_limit_per_operator_foreign=2,
    )
    citizen = holding(*["50212"] * 5, nationality="MY")
    visitor = holding(*["50212"] * 3, nationality="TH")
    assert over_limit_sims(citizen, rules) == set()
    assert over_limit_sims(visitor, rules) == {visitor[2].imsi}
