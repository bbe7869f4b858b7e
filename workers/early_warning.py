"""What partner regulators are told about flagged SIMs: one indicator per SIM
on each partner's compacted topic, as its agreement allows (`[partners.<c>]`).

Pure: from a SIM's new case record to the indicator for one partner, or to
the withdrawal of one sent before. An indicator names the SIM by its IMSI or
by a pseudonym keyed per partner (two partners cannot join their lists), and
carries only the shared reasons' codes, their risk, since when and the case
version: never the holder, the MSISDN, the ICCID nor any reason's evidence.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from schemas.keyed_hash import HmacSha256
from simguard.settings import PartnerPolicy

INDICATOR_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class PartnerLink:
    """One partner's policy and its pseudonym key, made once per worker."""

    country: str
    policy: PartnerPolicy
    _pseudonyms: HmacSha256 | None

    @staticmethod
    def of(country: str, policy: PartnerPolicy, secret: str) -> PartnerLink:
        key = HmacSha256(secret.encode(), b"partner:" + country.encode() + b":")
        return PartnerLink(country, policy, key if policy.subject == "pseudonym" else None)

    def subject(self, imsi: str) -> str:
        if self._pseudonyms is None:
            return imsi
        return self._pseudonyms.hexdigest(imsi.encode())


def links(partners: Mapping[str, PartnerPolicy], secret: str) -> list[PartnerLink]:
    return [PartnerLink.of(country, partners[country], secret) for country in sorted(partners)]


def indicator(
    link: PartnerLink,
    record: Mapping[str, Any],
    weights: Mapping[str, int],
    home_country: str,
    shared_before: bool,
) -> dict[str, Any] | None:
    """The indicator `record` (a new case version) makes for the partner:
    `flagged` when shared reasons worth `min_risk` hold, `withdrawn` when the
    partner was told before and they no longer do, None when there is
    nothing to tell."""
    flagged = record["status"] == "flagged"
    shared = [r for r in record["reasons"] if flagged and r["code"] in link.policy.reasons]
    risk = min(100, sum(weights.get(reason["code"], 0) for reason in shared))
    qualifies = bool(shared) and risk >= link.policy.min_risk
    if not qualifies and not shared_before:
        return None
    return {
        "schema_version": INDICATOR_SCHEMA_VERSION,
        "subject_type": link.policy.subject,
        "subject": link.subject(str(record["imsi"])),
        "home_country": home_country,
        "status": "flagged" if qualifies else "withdrawn",
        "reasons": sorted(reason["code"] for reason in shared) if qualifies else [],
        "risk": risk if qualifies else 0,
        "since": min(reason["since"] for reason in shared) if qualifies else None,
        "case_version": record["version"],
        "updated_at": record["updated_at"],
    }
