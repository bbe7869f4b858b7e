"""The identifier checks, on their own (python-stdnum and phonenumbers underneath)."""

from __future__ import annotations

import factories
import pytest
from factories import iccid, imei, thai_national_id
from hypothesis import given
from hypothesis import strategies as st
from stdnum import luhn
from stdnum.th import pin

from schemas import identifiers as ids


@pytest.mark.parametrize(
    ("plmn", "country"),
    [
        ("52003", "TH"),
        ("52001", "TH"),
        ("52018", "TH"),
        ("45606", "KH"),
        ("41401", "MM"),
        ("45701", "LA"),
        ("50212", "MY"),
        ("52501", "SG"),
        ("45201", "VN"),
        ("51502", "PH"),
        ("51010", "ID"),
        ("44010", "JP"),
        ("45005", "KR"),
        ("310260", "US"),
    ],
)
def test_plmn_country_comes_from_the_mcc(plmn: str, country: str) -> None:
    assert ids.plmn_country(plmn) == country


def test_plmn_country_of_a_bare_mcc() -> None:
    assert ids.plmn_country("520") == "TH"


def test_plmn_country_of_an_mnc_missing_from_the_table_is_the_mcc_country() -> None:
    assert ids.plmn_country("52066") == "TH"


@pytest.mark.parametrize(
    "plmn",
    [
        pytest.param("00001", id="unknown mcc"),
        pytest.param("90101", id="international network"),
        pytest.param("00101", id="test network"),
        pytest.param("52", id="too short"),
        pytest.param("", id="empty"),
    ],
)
def test_plmn_country_is_none_without_a_country(plmn: str) -> None:
    assert ids.plmn_country(plmn) is None


def test_every_mcc_country_is_a_valid_country() -> None:
    countries = {ids.plmn_country(f"{mcc:03d}") for mcc in range(1000)} - {None}
    assert len(countries) > 200
    assert all(ids.is_valid_country(country) for country in countries if country)


@pytest.mark.parametrize("plmn", ["52003", "310260", "90101", "52099"])
def test_plmn_with_a_known_mcc_is_valid(plmn: str) -> None:
    assert ids.is_valid_plmn(plmn)


@pytest.mark.parametrize("plmn", ["5200", "5200301", "52O03", "00001", "", " 52003", "52003\n"])
def test_malformed_or_unknown_plmn_is_invalid(plmn: str) -> None:
    assert not ids.is_valid_plmn(plmn)


def test_imsi_of_15_digits_with_known_mcc_is_valid() -> None:
    assert ids.is_valid_imsi("520031234567890")


@pytest.mark.parametrize(
    "value", ["52003123456789", "5200312345678901", "000001234567890", "52003-123456789"]
)
def test_imsi_of_wrong_length_or_unknown_mcc_is_invalid(value: str) -> None:
    assert not ids.is_valid_imsi(value)


@pytest.mark.parametrize("seed", [0, 1, 99, 123456789])
def test_iccid_with_luhn_digit_is_valid(seed: int) -> None:
    assert ids.is_valid_iccid(iccid(seed))


def test_iccid_with_wrong_luhn_digit_is_invalid() -> None:
    value = iccid(5)
    assert not ids.is_valid_iccid(value[:-1] + str((int(value[-1]) + 1) % 10))


def test_iccid_not_starting_with_89_is_invalid() -> None:
    body = "870000000000000001"
    assert not ids.is_valid_iccid(body + luhn.calc_check_digit(body))


def test_imei_with_luhn_digit_is_valid() -> None:
    assert ids.is_valid_imei(imei(4))


VALID_IMEI = imei(4)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(VALID_IMEI[:-1] + str((int(VALID_IMEI[-1]) + 1) % 10), id="wrong luhn digit"),
        pytest.param(VALID_IMEI[:14], id="14 digits"),
        pytest.param(VALID_IMEI + "0", id="16 digits"),
        pytest.param(VALID_IMEI[:7] + "x" + VALID_IMEI[8:], id="a letter"),
    ],
)
def test_imei_of_wrong_length_or_luhn_is_invalid(value: str) -> None:
    assert not ids.is_valid_imei(value)


@pytest.mark.parametrize(
    ("msisdn", "country"),
    [("+66812345678", "TH"), ("+85512345678", "KH"), ("+14155552671", "US")],
)
def test_msisdn_of_its_country_is_valid(msisdn: str, country: str) -> None:
    assert ids.is_valid_msisdn_for_country(msisdn, country)


@pytest.mark.parametrize(
    ("msisdn", "country"),
    [
        pytest.param("+85512345678", "TH", id="cambodian number for thailand"),
        pytest.param("+66812345", "TH", id="too short"),
        pytest.param("66812345678", "TH", id="no plus"),
        pytest.param("+66 81 234 5678", "TH", id="spaces"),
        pytest.param("+660812345678", "TH", id="trunk prefix"),
        pytest.param("+66812345678", "th", id="lower-case country"),
    ],
)
def test_msisdn_of_another_country_or_form_is_invalid(msisdn: str, country: str) -> None:
    assert not ids.is_valid_msisdn_for_country(msisdn, country)


@pytest.mark.parametrize("seed", [0, 1, 7, 10**10, 10**11 - 1])
def test_thai_national_id_with_check_digit_is_valid(seed: int) -> None:
    assert ids.is_valid_thai_national_id(thai_national_id(seed))


def test_thai_national_id_with_wrong_check_digit_is_invalid() -> None:
    value = thai_national_id(3)
    assert not ids.is_valid_thai_national_id(value[:-1] + str((int(value[-1]) + 1) % 10))


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("1-2345-45678-78-1", "1234545678781"),
        (" aa 123\t4567 ", "AA1234567"),
        ("AA1234567", "AA1234567"),
    ],
)
def test_id_number_is_normalised_to_upper_case_without_separators(
    raw: str, normalised: str
) -> None:
    assert ids.normalise_id_number(raw) == normalised


@pytest.mark.parametrize("code", ["TH", "KH", "MM", "LA", "US", "XK"])
def test_upper_case_alpha_2_country_is_valid(code: str) -> None:
    assert ids.is_valid_country(code)


@pytest.mark.parametrize("code", ["th", "THA", "ZZ", "XX", "", "T"])
def test_other_country_codes_are_invalid(code: str) -> None:
    assert not ids.is_valid_country(code)


@given(st.text(alphabet="0123456789", min_size=19, max_size=20).map(lambda s: "89" + s[2:]))
def test_iccid_check_digit_agrees_with_stdnum_luhn(iccid: str) -> None:
    assert ids.is_valid_iccid(iccid) == luhn.is_valid(iccid)


@given(st.text(alphabet="0123456789", min_size=13, max_size=13))
def test_thai_pin_check_digit_agrees_with_stdnum(number: str) -> None:
    assert ids.is_valid_thai_national_id(number) == pin.is_valid(number)


def test_thai_pin_agrees_with_stdnum_on_numbers_with_every_check_digit() -> None:
    for seed in range(1, 3001):
        valid = factories.thai_national_id(seed)
        for digit in "0123456789":
            number = valid[:12] + digit
            assert ids.is_valid_thai_national_id(number) == pin.is_valid(number)
