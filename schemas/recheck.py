"""Recheck records (the internal `simguard.sim-rechecks.v1` topic): a worker
or the registry import asks the worker owning a SIM to re-evaluate it. They
are checked like input: a forged one names no SIM that does not exist."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from schemas import identifiers as ids
from schemas.events import UtcDateTime

# allow_list: an allow-list entry naming the SIM was added or removed.
# device: a handset the SIM was seen in now holds a DEVICE_MANY_SIMS group.
CHECKS = ("holder", "dealer", "allow_list", "device")


class RecheckSchema(Schema):
    class Meta:
        unknown = RAISE

    imsi = ids.IMSI.field(required=True)
    check = fields.String(required=True, validate=validate.OneOf(CHECKS))
    # Sent by workers, not by the registry import: when it was asked.
    at = UtcDateTime()
