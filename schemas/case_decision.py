"""A regulator's decision on a SIM's case, from the request to the audit record.

Three shapes of one decision:

- the request a regulator's key POSTs to `/v1/cases/{imsi}/decisions`;
- the decision as the API publishes it on the internal, IMSI-keyed
  `simguard.case-decisions.v1` topic, for the worker that owns the SIM;
- the audit record that worker appends to `regulator.case-decisions.v1` and
  keeps in the store: the decision with what came of it.

A decision is taken on one version of the case (`case_version`): the worker
applies it only while that is still the SIM's current version, so a decision
never lands on evidence its author did not see.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Final

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from schemas import identifiers as ids
from schemas.case_record import DECISION_ACTIONS, REASON_CODES
from schemas.events import StrictInteger, UtcDateTime, UuidString, utc_now

CONFIRM, DISMISS, ESCALATE = DECISION_ACTIONS
ACTIONS: Final = DECISION_ACTIONS

APPLIED: Final = "applied"
# The case moved on (new evidence, or another decision) before this one was applied.
STALE_CASE_VERSION: Final = "stale_case_version"
# A dismissal of reasons the case no longer holds.
NOTHING_TO_DISMISS: Final = "nothing_to_dismiss"
OUTCOMES: Final = (APPLIED, STALE_CASE_VERSION, NOTHING_TO_DISMISS)

# A dismissal is a judgement on today's evidence, not a licence: it lapses.
MAX_DISMISSAL: Final = timedelta(days=366)
MAX_REASON_CHARS: Final = 500


class DecisionRequestSchema(Schema):
    """What a regulator sends. `reason` and `expires_at` are required for a
    dismissal; `codes` (dismissal only) names the reasons dismissed, all of
    the case's active ones when absent. `decision_id` makes a retried request
    the same decision."""

    class Meta:
        unknown = RAISE

    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    case_version = StrictInteger(required=True, validate=validate.Range(min=1))
    reason = fields.String(validate=validate.Length(1, MAX_REASON_CHARS))
    expires_at = UtcDateTime()
    codes = fields.List(
        fields.String(validate=validate.OneOf(REASON_CODES)),
        validate=validate.Length(min=1),
    )
    decision_id = UuidString()

    def __init__(self, *, clock: Any = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.clock = clock if clock is not None else utc_now

    @validates_schema(skip_on_field_errors=False)
    def _dismissal_says_why_and_until(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("action") != DISMISS:
            if "codes" in data or "expires_at" in data:
                raise ValidationError(
                    "Only a dismissal names codes and an expiry.",
                    "codes" if "codes" in data else "expires_at",
                )
            return
        errors: dict[str, list[str]] = {}
        if "reason" not in data:
            errors["reason"] = ["A dismissal says why (e.g. 'border trader, verified')."]
        expires_at = data.get("expires_at")
        if expires_at is None:
            errors["expires_at"] = ["A dismissal has an expiry."]
        else:
            now: datetime = self.clock()
            if expires_at <= now:
                errors["expires_at"] = ["The expiry is not in the future."]
            elif expires_at - now > MAX_DISMISSAL:
                errors["expires_at"] = [f"A dismissal lasts at most {MAX_DISMISSAL.days} days."]
        codes = data.get("codes") or []
        if len(codes) != len(set(codes)):
            errors["codes"] = ["Each code appears at most once."]
        if errors:
            raise ValidationError(errors)


class CaseDecisionSchema(Schema):
    """The decision on the internal topic: the request, resolved (a dismissal
    always names its codes), with who took it and when."""

    class Meta:
        unknown = RAISE

    decision_id = UuidString(required=True)
    imsi = ids.IMSI.field(required=True)
    action = fields.String(required=True, validate=validate.OneOf(ACTIONS))
    case_version = StrictInteger(required=True, validate=validate.Range(min=1))
    reason = fields.String(required=True, allow_none=True)
    codes = fields.List(fields.String(validate=validate.OneOf(REASON_CODES)), required=True)
    expires_at = UtcDateTime(required=True, allow_none=True)
    # The regulator's API key id: who, without naming a person.
    decided_by = fields.String(required=True, validate=validate.Length(1, 64))
    decided_at = UtcDateTime(required=True)

    @validates_schema(skip_on_field_errors=False)
    def _dismissal_is_complete(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("action") == DISMISS and (
            not data.get("codes") or data.get("expires_at") is None or not data.get("reason")
        ):
            raise ValidationError("A dismissal names its codes, reason and expiry.")


class DecisionAuditSchema(CaseDecisionSchema):
    """One line of the audit: the decision, and what the worker made of it."""

    outcome = fields.String(required=True, validate=validate.OneOf(OUTCOMES))
    applied_at = UtcDateTime(required=True)
    # The case version that carries the decision; null when it was not applied.
    resulting_version = StrictInteger(required=True, allow_none=True)
