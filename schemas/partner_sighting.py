"""A partner regulator's sighting of one of our SIMs on its networks, as it
arrives replicated from its cluster (`<partner>.ew.sightings.v1`).

A partner speaks for its own networks only, about our SIMs only: after the
schema, `foreign_problems` holds the visited network to the partner's
country and the IMSI to ours (its MCC is our home country's).
"""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, fields, validate

from schemas import identifiers as ids
from schemas.events import Clock, UuidString, event_time_field, utc_now


class PartnerSightingSchema(Schema):
    class Meta:
        unknown = RAISE

    event_id = UuidString(required=True)
    imsi = ids.IMSI.field(required=True)
    observed_at = event_time_field()
    visited_plmn = ids.PLMN.field(required=True)
    cell_id = fields.String(validate=validate.Length(1, 64))
    imei = ids.IMEI.field()

    def __init__(self, *, clock: Clock = utc_now, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock


def foreign_problems(event: dict[str, Any], partner: str, home_country: str) -> list[str]:
    """Why a loaded sighting is not the partner's to send (empty when it is)."""
    problems = []
    if ids.plmn_country(str(event["imsi"])) != home_country:
        problems.append(f"/imsi: not a SIM of {home_country} (by its MCC)")
    if ids.plmn_country(str(event["visited_plmn"])) != partner:
        problems.append(f"/visited_plmn: not a network of {partner}, the partner that sent it")
    return problems
