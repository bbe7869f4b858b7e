"""Valid events and registry rows for the benchmarks, made from a SIM number.

SIM number `n` always gives the same IMSI, ICCID, MSISDN and holder, so a
benchmark can name a SIM by its number, produce its events in any order and
look it up later. Check digits come from python-stdnum (Luhn, the Thai PIN),
the libraries the wire schemas verify them with. Only `event_id` is fresh on
every call, as a sender's would be.
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
from stdnum import luhn
from stdnum.th import pin

# The four Thai home networks, with the issuer digits of their ICCIDs.
OPERATORS: Final = ("52001", "52003", "52004", "52005")
ICCID_ISSUERS: Final = {"52001": "01", "52003": "03", "52004": "04", "52005": "05"}
# Domestic cells; one in ten is a border cell in the bench's border-cell CSV.
DOMESTIC_CELLS: Final = 2_000
# About one observation in a hundred is abroad (per mille): a tourist in Japan,
# a worker in Malaysia, and a few in Cambodia (a high-risk country).
ROAMING_PLMNS: Final = (("44010", 5), ("50212", 4), ("45606", 2))
CSV_COLUMNS: Final = (
    "imsi", "iccid", "msisdn", "operator", "id_type", "id_number", "nationality",
    "verification", "registered_at", "status",
)  # fmt: skip
VERIFICATIONS: Final = ("biometric", "in_person", "ekyc")


def operator_of(n: int) -> str:
    return OPERATORS[n % len(OPERATORS)]


def imsi(n: int) -> str:
    operator = operator_of(n)
    return f"{operator}{n:0{15 - len(operator)}d}"


def iccid(n: int) -> str:
    body = f"8966{ICCID_ISSUERS[operator_of(n)]}{n % 10**13:013d}"
    check_digit: str = luhn.calc_check_digit(body)
    return body + check_digit


def msisdn(n: int) -> str:
    """+66 8x xxx xxxx: distinct for the first 10**8 SIMs."""
    return f"+668{n % 10**8:08d}"


def holder_of(n: int) -> int:
    """Two SIMs per person, about the national average (130 M SIMs, 70 M people)."""
    return n // 2


def thai_national_id(holder: int) -> str:
    body = f"{1 + holder % 8}{holder % 10**11:011d}"
    check_digit: str = pin.calc_check_digit(body)
    return body + check_digit


def holder_ref(holder: int) -> str:
    """Shaped like the API's HMAC-SHA256 of a holder (the wire carries only this)."""
    return hashlib.sha256(f"bench-holder-{holder}".encode()).hexdigest()


def border_cell_ids() -> list[str]:
    return [_cell(index) for index in range(0, DOMESTIC_CELLS, 10)]


def _cell(index: int) -> str:
    return f"TH-CELL-{index:05d}"


def _text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def activation(n: int, at: datetime, dealer_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "operator": operator_of(n),
        "imsi": imsi(n),
        "iccid": iccid(n),
        "msisdn": msisdn(n),
        "activated_at": _text(at),
        "channel": "dealer" if dealer_id else "retail",
        "location": {"country": "TH", "cell_id": _cell(n % DOMESTIC_CELLS)},
    }
    if dealer_id:
        event["dealer_id"] = dealer_id
    return event


def registration_wire(n: int, at: datetime, status: str = "active") -> dict[str, Any]:
    """A registration as found on Kafka: pseudonymised holder."""
    return {
        "event_id": str(uuid.uuid4()),
        "operator": operator_of(n),
        "imsi": imsi(n),
        "iccid": iccid(n),
        "msisdn": msisdn(n),
        "holder_ref": holder_ref(holder_of(n)),
        "holder_nationality": "TH",
        "verification": VERIFICATIONS[n % len(VERIFICATIONS)],
        "registered_at": _text(at),
        "status": status,
    }


def observation(n: int, sequence: int, at: datetime) -> dict[str, Any]:
    """The SIM's `sequence`-th observation: mostly at home on a cell, some abroad."""
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "operator": operator_of(n),
        "imsi": imsi(n),
        "observed_at": _text(at),
    }
    slot = (n * 31 + sequence * 997) % 1000
    threshold = 0
    for plmn, share in ROAMING_PLMNS:
        threshold += share
        if slot < threshold:
            event["visited_plmn"] = plmn
            return event
    event["visited_plmn"] = operator_of(n)
    event["cell_id"] = _cell((n + sequence * 7) % DOMESTIC_CELLS)
    return event


# Of every SIMS_PER_BOX_BLOCK SIMs, the first SIM_BOX_SLOTS share one handset
# (a SIM box: DEVICE_MANY_SIMS); every other SIM is in a handset of its own.
SIMS_PER_BOX_BLOCK: Final = 100
SIM_BOX_SLOTS: Final = 10
_HANDSET_TAC: Final = "35332509"


def handset_imei(n: int) -> str:
    """The IMEI of the handset SIM `n` is seen in."""
    block, slot = divmod(n, SIMS_PER_BOX_BLOCK)
    serial = block * SIMS_PER_BOX_BLOCK if slot < SIM_BOX_SLOTS else n
    body = f"{_HANDSET_TAC}{serial % 10**6:06d}"
    return body + str(luhn.calc_check_digit(body))


def activations_and_registrations(
    first: int, count: int, now: datetime
) -> Iterator[tuple[str, dict[str, Any]]]:
    """(kind, event) for SIMs first..first+count-1: each registered, then activated.

    One SIM in ten is activated by a dealer; a dealer sells 20 SIMs, fewer than
    a bulk-activation burst, so the dealer rule runs without firing.
    """
    for n in range(first, first + count):
        registered_at = now - timedelta(minutes=30, seconds=n % 600)
        yield "registrations", registration_wire(n, registered_at)
        dealer_id = f"D-{operator_of(n)}-{n // 200:06d}" if n % 10 == 0 else None
        yield "activations", activation(n, registered_at + timedelta(minutes=5), dealer_id)


def observations(
    first_sim: int, sims: int, per_sim: int, now: datetime, with_imei: bool = False
) -> Iterator[dict[str, Any]]:
    """`per_sim` observations of each SIM, a few minutes apart, interleaved
    across SIMs; `with_imei`: each names the SIM's handset (`handset_imei`)."""
    for sequence in range(per_sim):
        at = now - timedelta(minutes=5 * (per_sim - sequence))
        for n in range(first_sim, first_sim + sims):
            event = observation(n, sequence, at)
            if with_imei:
                event["imei"] = handset_imei(n)
            yield event


# Of every USAGE_BOX_BLOCK SIMs, one calls all day from one cell (over the
# call limit and static: HIGH_CALL_VOLUME and STATIC_HIGH_VOLUME).
USAGE_BOX_BLOCK = 50


def usage_days(first_sim: int, sims: int, days: int, now: datetime) -> Iterator[dict[str, Any]]:
    """Each SIM's usage report for each of the `days` UTC days before `now`'s,
    day by day across SIMs: an ordinary day of 0 to 19 calls from a few cells,
    but for one SIM in USAGE_BOX_BLOCK, which calls 150 times from one cell."""
    for days_ago in range(days, 0, -1):
        day = (now - timedelta(days=days_ago)).date().isoformat()
        for n in range(first_sim, first_sim + sims):
            heavy = n % USAGE_BOX_BLOCK == 0
            calls = 150 if heavy else (n + days_ago) % 20
            yield {
                "event_id": str(uuid.uuid4()),
                "operator": operator_of(n),
                "imsi": imsi(n),
                "day": day,
                "outgoing_calls": calls,
                "distinct_called_numbers": calls // 2,
                "distinct_cells": 1 if heavy else (3 if calls else 0),
                "top_cell_share": 1.0 if heavy else (0.5 if calls else 0.0),
            }


def csv_block(first: int, count: int) -> bytes:
    """Registry CSV lines (no header) for SIMs first..first+count-1 (below 10**8).

    Ten million rows must be written in seconds, so the per-row work is a
    table look-up: SIMs go by thousands, whose numbers share every digit but
    the last three, and the check digits are sums (Luhn's, the Thai PIN's
    weighted one) of a part per thousand and a part per last three digits.
    The values are those of imsi(), iccid(), msisdn() and thai_national_id().
    """
    end = first + count
    if end > _CSV_SIMS:
        raise ValueError(f"the registry CSV has {_CSV_SIMS:,} SIMs at most (distinct MSISDNs)")
    times, days, lows, low_luhn, statuses = _csv_tables()
    issuers = tuple(ICCID_ISSUERS[operator] for operator in OPERATORS)
    span_seconds = _REGISTRY_DAYS * 86_400
    lines: list[str] = []
    append = lines.append
    for thousand in range(first // 1000, (end + 999) // 1000):
        # 1000 is a multiple of 4 and of 50: the operator and the status
        # depend on the last three digits only.
        digits = f"{thousand:07d}"
        imsi_heads = tuple(operator + digits for operator in OPERATORS)
        iccid_heads = tuple(f"8966{issuer}{thousand:010d}" for issuer in issuers)
        high_luhn = tuple(_luhn_high(issuer, thousand) for issuer in issuers)
        msisdn_head = f"+668{thousand % 100_000:05d}"
        national_ids = _national_ids(thousand * 500)
        low_first = max(first - thousand * 1000, 0)
        low_end = min(end - thousand * 1000, 1000)
        moment = (thousand * 1000 + low_first) * 7 % span_seconds
        verification = (thousand * 1000 + low_first) % len(VERIFICATIONS)
        for low in range(low_first, low_end):
            operator_index = low & 3
            day, second = divmod(moment, 86_400)
            last_digits = lows[low]
            append(
                _CSV_ROW
                % (
                    imsi_heads[operator_index],
                    last_digits,
                    iccid_heads[operator_index],
                    last_digits,
                    -(high_luhn[operator_index] + low_luhn[low]) % 10,
                    msisdn_head,
                    last_digits,
                    OPERATORS[operator_index],
                    national_ids[low >> 1],
                    VERIFICATIONS[verification],
                    days[day],
                    times[second],
                    statuses[low],
                )
            )
            moment += 7
            if moment >= span_seconds:
                moment -= span_seconds
            verification = (verification + 1) % len(VERIFICATIONS)
    return "".join(lines).encode()


# Registrations in the registry CSV are spread over the two years before 2026.
_REGISTRY_DAYS: Final = 730
_CSV_SIMS: Final = 10**8
_CSV_ROW: Final = "%s%s,%s%s%d,%s%s,%s,national_id,%s,TH,%s,%sT%sZ,%s\n"
# stdnum.th.pin: the first twelve digits weigh 2, 1, 0, -1, ... -9.
_PIN_WEIGHTS: Final = tuple(2 - position for position in range(12))


@functools.cache
def _csv_tables() -> tuple[
    tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[int, ...], tuple[str, ...]
]:
    """Times of day, dates, last three digits, their Luhn sums, statuses."""
    times = tuple(f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}" for s in range(86_400))
    days = tuple(_registry_date(day) for day in range(_REGISTRY_DAYS))
    lows = tuple(f"{low:03d}" for low in range(1000))
    low_luhn = tuple(_luhn_low(low) for low in range(1000))
    statuses = tuple("suspended" if low % 50 == 0 else "active" for low in range(1000))
    return times, days, lows, low_luhn, statuses


def _registry_date(day: int) -> str:
    return (datetime(2024, 1, 1, tzinfo=UTC) + timedelta(days=day)).strftime("%Y-%m-%d")


def _national_ids(first_holder: int) -> list[str]:
    """thai_national_id() of 500 holders from first_holder (below 10**11)."""
    pin_high = {
        high: _weighted_digits(high, _PIN_WEIGHTS[1:9])
        for high in {first_holder // 1000, (first_holder + 499) // 1000}
    }
    pin_low = _pin_low()
    national_ids = []
    for holder in range(first_holder, first_holder + 500):
        lead = 1 + holder % 8
        high, low = divmod(holder, 1000)
        total = (2 * lead + pin_high[high] + pin_low[low]) % 11
        national_ids.append(f"{lead}{holder:011d}{(1 - total) % 10}")
    return national_ids


@functools.cache
def _pin_low() -> tuple[int, ...]:
    return tuple(_weighted_digits(low, _PIN_WEIGHTS[9:]) for low in range(1000))


def _weighted_digits(value: int, weights: tuple[int, ...]) -> int:
    return sum(w * int(d) for w, d in zip(weights, f"{value:0{len(weights)}d}", strict=True))


@functools.cache
def _luhn_high(issuer: str, high: int) -> int:
    checksum: int = luhn.checksum(f"8966{issuer}{high:010d}0000")
    return checksum


@functools.cache
def _luhn_low(low: int) -> int:
    checksum: int = luhn.checksum(f"{low:03d}0")
    return checksum


def fast_iccid(n: int) -> str:
    """The same value as iccid(n), from the tables csv_block uses: four times faster."""
    issuer = ICCID_ISSUERS[operator_of(n)]
    high, low = divmod(n % 10**13, 1000)
    checksum = (_luhn_high(issuer, high) + _luhn_low(low)) % 10
    return f"8966{issuer}{high:010d}{low:03d}{-checksum % 10}"


def json_bytes(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)
