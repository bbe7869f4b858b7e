"""What makes each identifier on simguard's wire valid: as predicates, and as fields.

The predicates are pure functions over strings, backed by maintained data:
python-stdnum (MCC table, IMEI, Thai PIN) and phonenumbers (E.164, region
codes); the Luhn sum of ICCIDs is computed here, held to stdnum's by a test.
The field contracts at the end (schemas/contract.py) pair them with one error
message per broken rule; the event and case-record schemas, the fast event
loader and the registry import's checkers are all derived from them.

Digits are ASCII digits only: `str.isdigit` would also accept Thai or Arabic
digits, which no downstream system stores or compares as equal.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from operator import mul
from typing import Any

import phonenumbers
from stdnum import imei, imsi, numdb
from stdnum.th import pin

from schemas.contract import FieldContract

# Shapes as JSON Schema patterns, so the OpenAPI document states the same rule.
PLMN_PATTERN = "^[0-9]{5,6}$"
IMSI_PATTERN = "^[0-9]{15}$"
ICCID_PATTERN = "^89[0-9]{17,18}$"
IMEI_PATTERN = "^[0-9]{15}$"
# E.164 allows at most 15 digits including the country code.
E164_PATTERN = "^\\+[1-9][0-9]{1,14}$"
COUNTRY_PATTERN = "^[A-Z]{2}$"

_PLMN = re.compile(PLMN_PATTERN)
_IMSI = re.compile(IMSI_PATTERN)
_ICCID = re.compile(ICCID_PATTERN)
_IMEI = re.compile(IMEI_PATTERN)
_E164 = re.compile(E164_PATTERN)
_COUNTRY = re.compile(COUNTRY_PATTERN)

# phonenumbers' regions: every ISO 3166-1 alpha-2 code with a numbering plan
# (so every country a SIM can be seen in or a holder can come from), plus the
# reserved codes telecoms use: XK (Kosovo, also in the MCC table), AC and TA.
# Uninhabited territories without phones (AQ, BV, HM, ...) are not in it.
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)


@functools.cache
def _mcc_table() -> Mapping[str, str | None]:
    """MCC -> upper-case alpha-2 country, or None for MCCs without one.

    Built from python-stdnum's IMSI data, where the country sits on each MNC
    entry. The MCC's country is the one most of its MNCs name: the per-MNC
    entries are not reliable on their own (310 260, T-Mobile US, is tagged
    with the US Virgin Islands), and the contract says the MCC gives the
    country.
    MCCs for international, satellite and test networks (901, 001, ...) have
    no country.
    """
    table: dict[str, str | None] = {}
    for _length, low, high, _props, mncs in numdb.get("imsi").prefixes:
        counts = Counter(mnc[3]["cc"].upper() for mnc in mncs if mnc[3].get("cc"))
        country = counts.most_common(1)[0][0] if counts else None
        for mcc in range(int(low), int(high) + 1):
            table[f"{mcc:03d}"] = country
    return table


def plmn_country(plmn: str) -> str | None:
    """The ISO alpha-2 country of a PLMN id or bare MCC ("52003" -> "TH").

    None for an unknown MCC and for MCCs that belong to no country.
    """
    return _mcc_table().get(plmn[:3]) if len(plmn) >= 3 else None


def is_valid_plmn(plmn: str) -> bool:
    """MCC+MNC, 5 or 6 digits, with an MCC that the MCC table knows."""
    return _PLMN.fullmatch(plmn) is not None and plmn[:3] in _mcc_table()


@functools.lru_cache(maxsize=1024)
def is_valid_operator(plmn: str) -> bool:
    """A home network: a PLMN id whose MCC belongs to a country (what the
    operator field's rules say together)."""
    return is_valid_plmn(plmn) and plmn_country(plmn) is not None


def is_valid_imsi(value: str) -> bool:
    """15 digits with a known MCC."""
    return _IMSI.fullmatch(value) is not None and _imsi_prefix_known(value[:6])


@functools.lru_cache(maxsize=65536)
def _imsi_prefix_known(prefix: str) -> bool:
    # stdnum's verdict depends only on the digits, the length and the MCC/MNC
    # prefix; its prefix search costs ~0.3 ms, paid here once per PLMN instead
    # of once per event.
    return bool(imsi.is_valid(prefix + "0" * (15 - len(prefix))))


def is_valid_iccid(value: str) -> bool:
    """19 or 20 digits, starting with 89 (telecom), ending in a Luhn check digit."""
    return _ICCID.fullmatch(value) is not None and _luhn_valid(value)


# Luhn: every second digit from the right is doubled and its digits summed.
_DOUBLED_DIGIT_SUM = str.maketrans("0123456789", "0246813579")


def _luhn_valid(digits: str) -> bool:
    """stdnum's luhn.is_valid for ASCII digits: its generator costs ~10 µs per
    ICCID, a tenth of a batch event's validation; this costs ~1."""
    summed = digits[-1::-2] + digits[-2::-2].translate(_DOUBLED_DIGIT_SUM)
    return (sum(summed.encode()) - ord("0") * len(summed)) % 10 == 0


def is_valid_imei(value: str) -> bool:
    """15 digits ending in a Luhn check digit (not the 16-digit IMEISV)."""
    return _IMEI.fullmatch(value) is not None and imei.is_valid(value)


def is_valid_msisdn(msisdn: str) -> bool:
    """A valid phone number, written in canonical E.164 ("+66812345678").

    Canonical means phonenumbers would write it the same way, so "+660812345678"
    (a national trunk prefix after the country code) is refused rather than
    stored next to "+66812345678" as a different number.
    """
    split = _split_canonical_e164(msisdn)
    if split is None:
        return _is_valid_msisdn_parsed(msisdn)
    return _is_valid_split(*split)


def is_valid_msisdn_for_country(msisdn: str, country: str) -> bool:
    """A valid canonical E.164 number that belongs to `country` (alpha-2)."""
    if not is_valid_country(country):
        return False
    split = _split_canonical_e164(msisdn)
    if split is None:
        return _is_valid_msisdn_for_country_parsed(msisdn, country)
    return _region_plan(country, split[0]).is_valid(split[1])


def msisdn_verdicts(msisdn: str, country: str) -> tuple[bool, bool]:
    """(is_valid_msisdn, is_valid_msisdn_for_country): both, for the price of one."""
    split = _split_canonical_e164(msisdn)
    if split is None:
        return is_valid_msisdn(msisdn), is_valid_msisdn_for_country(msisdn, country)
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[split[0]]
    if regions == (country,):
        # The number's only region is the country: one plan, one verdict.
        valid = _region_plan(country, split[0]).is_valid(split[1])
        return valid, valid
    valid = _is_valid_split(*split)
    in_country = is_valid_country(country) and _region_plan(country, split[0]).is_valid(split[1])
    return valid, in_country


def _is_valid_split(country_code: int, national_number: str) -> bool:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[country_code]
    region = regions[0] if len(regions) == 1 else _region_among(regions, national_number)
    return region is not None and _region_plan(region, country_code).is_valid(national_number)


# --- the MSISDN checks without phonenumbers.parse --------------------------------
# parse() handles free text (punctuation, extensions, IDD prefixes, vanity
# letters) and costs ~30 us, is_valid_number ~10 us: most of an import row's
# budget, and a cache cannot help when every event brings a new number. For a
# string that already has the E.164 shape, parse() only splits off the country
# code and, where the region has a national prefix that the rest starts with,
# may strip it. The fast path below does the split, sends every number where a
# strip could happen to phonenumbers itself, and checks the national number
# against the same metadata patterns, in the same way, as is_valid_number*.
# tests/test_schemas_msisdn_fast_path.py compares the verdicts with
# phonenumbers' own on generated numbers of every region.

_MAX_COUNTRY_CODE_DIGITS = 3
_MIN_NATIONAL_DIGITS = 2
_MAX_NATIONAL_DIGITS = 17
_COUNTRY_CODE_BY_DIGITS = {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}
_NUMBER_TYPES = (
    "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
    "voicemail", "fixed_line",
)  # fmt: skip


def _split_canonical_e164(msisdn: str) -> tuple[int, str] | None:
    """(country code, national number) when parse() is sure to give exactly that.

    None when the shape is wrong or when phonenumbers must decide (a national
    prefix that parse() might strip): the caller then asks phonenumbers.
    """
    if _E164.fullmatch(msisdn) is None:
        return None
    digits = msisdn[1:]
    for length in range(1, _MAX_COUNTRY_CODE_DIGITS + 1):
        country_code = _COUNTRY_CODE_BY_DIGITS.get(digits[:length])
        if country_code is not None:
            national_number = digits[length:]
            if not _MIN_NATIONAL_DIGITS <= len(national_number) <= _MAX_NATIONAL_DIGITS:
                return None
            prefix = _national_prefix_for_parsing(country_code)
            if prefix is not None and prefix.match(national_number):
                return None
            return country_code, national_number
    return None


@functools.cache
def _national_prefix_for_parsing(country_code: int) -> re.Pattern[str] | None:
    region = phonenumbers.region_code_for_country_code(country_code)
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
    pattern = metadata.national_prefix_for_parsing if metadata is not None else None
    return re.compile(pattern) if pattern else None


class _NumberDesc:
    """One PhoneNumberDesc: the lengths it allows (empty: any) and its pattern."""

    def __init__(self, desc: Any) -> None:
        pattern = getattr(desc, "national_number_pattern", None) if desc is not None else None
        self.lengths = frozenset(desc.possible_length) if desc is not None else frozenset()
        self.pattern = re.compile(pattern) if pattern else None

    def matches(self, national_number: str) -> bool:
        # phonenumbers' _is_number_matching_desc + _match_national_number.
        if self.pattern is None:
            return False
        if self.lengths and len(national_number) not in self.lengths:
            return False
        return self.pattern.fullmatch(national_number) is not None


class _RegionPlan:
    """A region's numbering plan as is_valid_number_for_region reads it.

    Valid means: the general description matches and so does one of the
    number types. Per length of national number, both are folded into one
    pattern, the general one as a lookahead, the types as alternatives.
    """

    def __init__(self, metadata: Any, country_code_matches: bool) -> None:
        usable = metadata is not None and country_code_matches
        self.general = _NumberDesc(metadata.general_desc if metadata is not None else None)
        descs = [getattr(metadata, name, None) for name in _NUMBER_TYPES] if usable else []
        if usable and not metadata.same_mobile_and_fixed_line_pattern:
            descs.append(metadata.mobile)
        self.types = [_NumberDesc(desc) for desc in descs if desc is not None]
        leading = metadata.leading_digits if metadata is not None else None
        self.leading_digits = re.compile(leading) if leading else None
        self._pattern_by_length: dict[int, re.Pattern[str]] = {}
        if not usable or self.general.pattern is None:
            return
        for length in range(_MIN_NATIONAL_DIGITS, _MAX_NATIONAL_DIGITS + 1):
            if self.general.lengths and length not in self.general.lengths:
                continue
            alternatives = [
                f"(?:{desc.pattern.pattern})"
                for desc in self.types
                if desc.pattern is not None and (not desc.lengths or length in desc.lengths)
            ]
            if alternatives:
                self._pattern_by_length[length] = re.compile(
                    f"(?=(?:{self.general.pattern.pattern})\\Z)(?:{'|'.join(alternatives)})"
                )

    def is_valid(self, national_number: str) -> bool:
        pattern = self._pattern_by_length.get(len(national_number))
        return pattern is not None and pattern.fullmatch(national_number) is not None


@functools.cache
def _region_plan(region: str, country_code: int) -> _RegionPlan:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(
        country_code, region.upper()
    )
    matches = region == phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY or (
        country_code == phonenumbers.country_code_for_valid_region(region)
    )
    return _RegionPlan(metadata, matches)


@dataclass(frozen=True)
class CountryNumbers:
    """A country's MSISDNs as plain regular expressions, to judge many at once.

    For a number "+" + `country_code` + N: when `national_prefix` (if any)
    does not match at the start of N, `msisdn_verdicts(number, country)` is
    (True, True) exactly when N's length is a key of `by_length` and N matches
    that length's `general` pattern whole and one of its `types` whole. The
    patterns use no look-around or back-reference, so other regular
    expression engines read them as `re` does.
    """

    country_code: str
    national_prefix: str | None
    by_length: Mapping[int, tuple[str, tuple[str, ...]]]


@functools.cache
def country_numbers(country: str) -> CountryNumbers | None:
    """None when `country` is unknown or shares its calling code with other
    regions (its numbers are then judged one by one)."""
    if not is_valid_country(country):
        return None
    code = phonenumbers.country_code_for_valid_region(country)
    if phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code) != (country,):
        return None
    digits = str(code)
    if any(digits[:length] in _COUNTRY_CODE_BY_DIGITS for length in range(1, len(digits))):
        return None  # _split_canonical_e164 would split off a shorter code
    plan = _region_plan(country, code)
    if plan.general.pattern is None:
        return None
    prefix = _national_prefix_for_parsing(code)
    by_length: dict[int, tuple[str, tuple[str, ...]]] = {}
    for length in plan._pattern_by_length:
        types = tuple(
            desc.pattern.pattern
            for desc in plan.types
            if desc.pattern is not None and (not desc.lengths or length in desc.lengths)
        )
        by_length[length] = (plan.general.pattern.pattern, types)
    return CountryNumbers(digits, prefix.pattern if prefix is not None else None, by_length)


def _region_among(regions: tuple[str, ...], national_number: str) -> str | None:
    # phonenumbers' _region_code_for_number_from_list: leading digits when the
    # region has them, else the first region whose plan the number fits.
    for region in regions:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        plan = _region_plan(region, metadata.country_code)
        if plan.leading_digits is not None:
            if plan.leading_digits.match(national_number):
                return region
        elif plan.is_valid(national_number):
            return region
    return None


def _is_valid_msisdn_parsed(msisdn: str) -> bool:
    number = _parse_e164(msisdn)
    return number is not None and phonenumbers.is_valid_number(number)


def _is_valid_msisdn_for_country_parsed(msisdn: str, country: str) -> bool:
    number = _parse_e164(msisdn)
    return number is not None and phonenumbers.is_valid_number_for_region(number, country)


@functools.lru_cache(maxsize=16384)
def _parse_e164(msisdn: str) -> phonenumbers.PhoneNumber | None:
    # Only for numbers the fast path hands over. PhoneNumber is not mutated.
    if _E164.fullmatch(msisdn) is None:
        return None
    try:
        number = phonenumbers.parse(msisdn, None)
    except phonenumbers.NumberParseException:
        return None
    canonical = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return number if canonical == msisdn else None


def is_valid_thai_national_id(value: str) -> bool:
    """A Thai 13-digit personal identification number with a valid check digit.

    Hyphens and spaces are allowed, as printed on the card ("1-2345-45678-78-1").
    """
    if _THAI_PIN_DIGITS.fullmatch(value) is None:
        return bool(pin.is_valid(value))
    # stdnum's check for the plain form, the one nearly every row has, without
    # its per-digit generator: the weights 13..2 are 2..-9 modulo 11.
    total = sum(map(mul, _THAI_PIN_WEIGHTS, value.encode())) - _THAI_PIN_ZERO_WEIGHT
    return value[12] == str((1 - total % 11) % 10)


# The plain 13-digit form; the registry block applies it as a column regex.
THAI_PIN_PATTERN = "^[1-8][0-9]{12}$"
_THAI_PIN_DIGITS = re.compile(THAI_PIN_PATTERN)
_THAI_PIN_WEIGHTS = tuple(2 - position for position in range(12))
# The weighted sum over the digits' byte values carries this much of "0".
_THAI_PIN_ZERO_WEIGHT = ord("0") * sum(_THAI_PIN_WEIGHTS)


def normalise_id_number(value: str) -> str:
    """The form of an identity number that is hashed into `holder_ref`.

    Upper-case, with hyphens and all whitespace removed, so "1-2345-45678-78-1"
    and "1234545678781" (or "ab 123" and "AB123") are the same person.
    """
    return "".join(value.split()).replace("-", "").upper()


def is_valid_country(code: str) -> bool:
    """An upper-case ISO 3166-1 alpha-2 code ("TH", not "th" or "THA")."""
    return _COUNTRY.fullmatch(code) is not None and code in COUNTRIES


# --- the same checks as field contracts ----------------------------------------
# Each field reports only the first rule a value breaks, in the order below, so
# "12345" gets "must be 15 digits" and not also "unknown MCC". The pattern goes
# into the field's metadata, from which the OpenAPI document is generated.

COUNTRY = FieldContract(
    rules=((is_valid_country, "Not an ISO 3166-1 alpha-2 country code (upper case, e.g. TH)."),),
    pattern=COUNTRY_PATTERN,
    documented={"example": "TH"},
)
PLMN = FieldContract(
    rules=((is_valid_plmn, "PLMN id has an unknown MCC."),),
    pattern=PLMN_PATTERN,
    shape_message="PLMN id must be 5 or 6 digits (MCC+MNC).",
    documented={"example": "45606"},
)
# A home operator's PLMN id: one whose MCC names the country of its MSISDNs.
OPERATOR = PLMN.extended(
    (is_valid_operator, "PLMN id's MCC belongs to no country."), example="52003"
)
IMSI = FieldContract(
    rules=((is_valid_imsi, "IMSI has an unknown MCC."),),
    pattern=IMSI_PATTERN,
    shape_message="IMSI must be 15 digits.",
    documented={"example": "520031234567890"},
)
ICCID = FieldContract(
    rules=((is_valid_iccid, "ICCID check digit is wrong."),),
    pattern=ICCID_PATTERN,
    shape_message="ICCID must be 19 or 20 digits starting with 89.",
    documented={"example": "89660312345678901239"},
)
MSISDN = FieldContract(
    rules=((is_valid_msisdn, "MSISDN is not a valid phone number in canonical E.164 form."),),
    pattern=E164_PATTERN,
    shape_message="MSISDN must be in E.164 form (e.g. +66812345678).",
    documented={"example": "+66812345678"},
)
IMEI = FieldContract(
    rules=((is_valid_imei, "IMEI check digit is wrong."),),
    pattern=IMEI_PATTERN,
    shape_message="IMEI must be 15 digits.",
    documented={"example": "353325091234561"},
)
