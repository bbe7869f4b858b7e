"""Identifiers for a simulated population: distinct, valid and reproducible.

Each kind of identifier comes from a counter that starts at a seed-chosen
offset, so a population never repeats an IMSI, an ICCID, a phone number or a
national ID, and one seed always gives the same ones. Check digits come from
python-stdnum (Luhn, the Thai PIN), as the wire schemas verify them.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from typing import Final

from stdnum import luhn
from stdnum.th import pin

# ICCID issuer digits per home PLMN, after "89" (telecom) and "66" (Thailand).
ICCID_ISSUERS: Final = {"52001": "01", "52003": "03", "52004": "04", "52005": "05"}
# Thai mobile numbers: +66 8x/9x and eight digits (all valid in phonenumbers' plan).
MOBILE_PREFIXES: Final = ("8", "9")
MOBILE_BLOCK: Final = 10**8
# A type allocation code of a common handset; the serial and Luhn digit follow.
HANDSET_TAC: Final = "35332509"
# Thai PINs start with 1-8 (0 and 9 are not issued to citizens) over 11 digits.
PIN_BLOCK: Final = 10**11
# Foreign workers register with passports: nationality and its number's letters.
PASSPORT_PREFIXES: Final = {"MM": "MC", "KH": "N", "LA": "P", "CN": "E", "GB": "5"}


@dataclass(frozen=True)
class Holder:
    """An identity document as sent over HTTP; one triple is one person."""

    id_type: str
    id_number: str
    nationality: str

    def as_json(self, printed: bool = False) -> dict[str, str]:
        """`printed`: the number as on a Thai ID card (1-2345-67890-12-3); the API
        normalises both forms to the same person."""
        number = self.id_number
        if printed and self.id_type == "national_id" and len(number) == 13:
            number = f"{number[0]}-{number[1:5]}-{number[5:10]}-{number[10:12]}-{number[12]}"
        return {"id_type": self.id_type, "id_number": number, "nationality": self.nationality}


class Identities:
    """Allocates every identifier of one population from one seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._msin = {plmn: rng.randrange(10**8) for plmn in ICCID_ISSUERS}
        self._iccid_serial = rng.randrange(10**12)
        self._mobile = rng.randrange(MOBILE_BLOCK // 2)
        self._imei_serial = rng.randrange(10**5)
        self._pin = rng.randrange(8 * PIN_BLOCK // 2)
        self._passport = rng.randrange(10**6)
        self._dealer = rng.randrange(10**4)

    def imsi(self, operator: str) -> str:
        """The operator's PLMN id and the next subscriber number (15 digits in all)."""
        self._msin[operator] = self._msin.get(operator, 0) + 1
        digits = 15 - len(operator)
        return f"{operator}{self._msin[operator] % 10**digits:0{digits}d}"

    def iccid(self, operator: str) -> str:
        self._iccid_serial += 1
        body = f"8966{ICCID_ISSUERS.get(operator, '99')}{self._iccid_serial % 10**13:013d}"
        return body + str(luhn.calc_check_digit(body))

    def msisdn(self) -> str:
        self._mobile += 1
        block, number = divmod(self._mobile % (len(MOBILE_PREFIXES) * MOBILE_BLOCK), MOBILE_BLOCK)
        return f"+66{MOBILE_PREFIXES[block]}{number:08d}"

    def imei(self) -> str:
        self._imei_serial += 1
        body = f"{HANDSET_TAC}{self._imei_serial % 10**6:06d}"
        return body + str(luhn.calc_check_digit(body))

    def thai_citizen(self) -> Holder:
        self._pin += 1
        first_digit, rest = divmod(self._pin % (8 * PIN_BLOCK), PIN_BLOCK)
        body = f"{1 + first_digit}{rest:011d}"
        return Holder("national_id", body + str(pin.calc_check_digit(body)), "TH")

    def foreign_worker(self, nationality: str) -> Holder:
        self._passport += 1
        prefix = PASSPORT_PREFIXES.get(nationality, "X")
        return Holder("passport", f"{prefix}{self._passport % 10**7:07d}", nationality)

    def dealer_id(self, operator: str) -> str:
        self._dealer += 1
        return f"D-{operator}-{self._dealer:05d}"


def event_id(rng: random.Random) -> str:
    """A version-4 UUID drawn from `rng`: fresh per event, yet reproducible."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
