"""`is_valid_msisdn*` give phonenumbers' own verdicts without phonenumbers.parse.

The reference is what the predicates did before, still the module's path for
the numbers the fast one hands over: parse, refuse a number that phonenumbers
would write differently, then `is_valid_number` or `is_valid_number_for_region`.
"""

from __future__ import annotations

import random

import phonenumbers
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import identifiers as ids

REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
COUNTRY_CODES = sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def reference_valid(msisdn: str) -> bool:
    return ids._is_valid_msisdn_parsed(msisdn)


def reference_valid_for(msisdn: str, country: str) -> bool:
    return ids.is_valid_country(country) and ids._is_valid_msisdn_for_country_parsed(
        msisdn, country
    )


def assert_same_verdicts(msisdn: str, country: str) -> None:
    assert ids.is_valid_msisdn(msisdn) == reference_valid(msisdn), msisdn
    assert ids.is_valid_msisdn_for_country(msisdn, country) == reference_valid_for(
        msisdn, country
    ), (msisdn, country)
    assert ids.msisdn_verdicts(msisdn, country) == (
        reference_valid(msisdn),
        reference_valid_for(msisdn, country),
    )


def example_numbers() -> list[str]:
    """Every region's example number of every type, in E.164."""
    found = []
    for region in REGIONS:
        for number_type in range(12):
            example = phonenumbers.example_number_for_type(region, number_type)
            if example is not None:
                found.append(
                    phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
                )
    return found


EXAMPLES = example_numbers()


@st.composite
def numbers_near_examples(draw: st.DrawFn) -> str:
    digits = list(draw(st.sampled_from(EXAMPLES))[1:])
    for _ in range(draw(st.integers(0, 3))):
        edit = draw(st.sampled_from(["change", "insert", "delete"]))
        at = draw(st.integers(0, max(0, len(digits) - 1)))
        digit = draw(st.sampled_from("0123456789"))
        if edit == "change" and digits:
            digits[at] = digit
        elif edit == "insert":
            digits.insert(at, digit)
        elif digits:
            del digits[at]
    return "+" + "".join(digits)


@st.composite
def numbers_after_country_codes(draw: st.DrawFn) -> str:
    country_code = draw(st.sampled_from(COUNTRY_CODES))
    return f"+{country_code}" + draw(st.text(alphabet="0123456789", max_size=14))


@settings(max_examples=3000, deadline=None)
@given(numbers_near_examples(), st.sampled_from(["TH", *REGIONS]))
def test_numbers_near_valid_ones_get_phonenumbers_verdicts(msisdn: str, country: str) -> None:
    assert_same_verdicts(msisdn, country)


@settings(max_examples=3000, deadline=None)
@given(numbers_after_country_codes(), st.sampled_from(["TH", "KH", "MM", "LA", "US", *REGIONS]))
def test_any_digits_after_a_country_code_get_phonenumbers_verdicts(
    msisdn: str, country: str
) -> None:
    assert_same_verdicts(msisdn, country)


@given(st.text(max_size=20), st.text(max_size=3))
def test_arbitrary_text_gets_phonenumbers_verdicts(msisdn: str, country: str) -> None:
    assert_same_verdicts(msisdn, country)


def test_every_example_number_gets_phonenumbers_verdicts() -> None:
    for msisdn in EXAMPLES:
        for country in ("TH", "US", "GB"):
            assert_same_verdicts(msisdn, country)


def test_thai_mobile_and_fixed_numbers_get_phonenumbers_verdicts() -> None:
    rng = random.Random(20261123)
    for _ in range(3000):
        msisdn = f"+66{rng.choice('0123456789')}{rng.randrange(10**9):0{rng.randrange(6, 10)}d}"
        assert_same_verdicts(msisdn[:13], "TH")


def test_thai_trunk_prefix_after_the_country_code_is_refused() -> None:
    assert not ids.is_valid_msisdn("+660812345678")
    assert ids.is_valid_msisdn("+66812345678")
