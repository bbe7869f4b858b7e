"""GET /v1/notices?after=<cursor>: operator notices for operators that poll
over HTTP rather than read their Kafka notice topic.

Every version of every notice, oldest first, from the store's notice feed
(simguard/store/notices.py: a cursor never skips a version, on PostgreSQL
with several workers writing at once included). An operator's key sees its
own PLMN ids' notices only; a regulator's sees every operator's.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from flask import Blueprint, Response, g, request
from marshmallow import Schema, fields

from schemas.case_record import REASON_CODES
from schemas.notice import CLOSED_BY, NOTICE_ACTIONS, NOTICE_STATUSES
from service import openapi
from service.context import service_context
from service.problems import FieldError, InvalidEvents
from simguard.store import notices as notice_rows

blueprint = Blueprint("notices", __name__)

DEFAULT_LIMIT: Final = 100
_PARAMETERS: Final = frozenset({"after", "limit"})
MAX_LIMIT: Final = 1000


def _time(**kwargs: Any) -> fields.String:
    return fields.String(required=True, metadata={"format": "date-time"}, **kwargs)


class NoticeViewSchema(Schema):
    """A notice as the API shows it: the fields of the wire's NoticeSchema
    (schemas/notice.py), named one by one, so a member the store gains later
    stays out until it is named here."""

    notice_id = fields.String(required=True, metadata={"format": "uuid"})
    imsi = fields.String(required=True)
    operator = fields.String(required=True)
    action = fields.String(required=True, metadata={"enum": list(NOTICE_ACTIONS)})
    reasons = fields.List(fields.String(metadata={"enum": list(REASON_CODES)}), required=True)
    case_version = fields.Integer(required=True)
    issued_at = _time()
    deadline = _time()
    status = fields.String(required=True, metadata={"enum": list(NOTICE_STATUSES)})
    notice_version = fields.Integer(required=True)
    updated_at = _time()
    actioned_at = _time(allow_none=True)
    closed_by = fields.String(required=True, allow_none=True, metadata={"enum": [*CLOSED_BY, None]})
    on_time = fields.Boolean(required=True, allow_none=True)


class NoticePageSchema(Schema):
    notices = fields.List(fields.Nested(NoticeViewSchema), required=True)
    next = fields.String(
        required=True,
        metadata={
            "description": "The cursor to send as `after` next time; the same as `after` "
            "when there is nothing new."
        },
    )


_PAGE = NoticePageSchema()


@blueprint.get("/v1/notices", provide_automatic_options=False)
@openapi.operation(
    summary="Operator notices after a cursor, oldest first",
    operationId="list_notices",
    tags=["notices"],
    parameters=[
        {
            "in": "query",
            "name": "after",
            "required": False,
            "description": "The `next` of the previous page; from the start when absent.",
            "schema": {"type": "string", "pattern": notice_rows.CURSOR_PATTERN},
        },
        {
            "in": "query",
            "name": "limit",
            "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        },
        openapi.CORRELATOR_PARAMETER,
    ],
    responses={
        "400": openapi.problem("Malformed request (a bad x-correlator)."),
        "200": openapi.success(
            "Every version of the notices of the key's PLMN ids (all, for a regulator's key).",
            NoticePageSchema,
        ),
        "401": openapi.UNAUTHENTICATED,
        "422": openapi.problem("A bad cursor or limit."),
    },
)
def list_notices() -> Response:
    context = service_context()
    api_key = context.authenticator.require(request.headers.get("Authorization"))
    g.operator = api_key.operator
    unknown = sorted(set(request.args) - _PARAMETERS)
    repeated = sorted(name for name in _PARAMETERS if len(request.args.getlist(name)) > 1)
    if unknown or repeated:
        raise InvalidEvents(
            "Only `after` and `limit`, once each, may be sent.",
            [FieldError(f"/{name}", "not a parameter of this route") for name in unknown]
            + [FieldError(f"/{name}", "sent more than once") for name in repeated],
        )
    after = request.args.get("after", notice_rows.START)
    limit = _limit(request.args.get("limit"))
    if not notice_rows.valid_cursor(after):
        raise InvalidEvents(
            "The cursor is not one this API gave.",
            [FieldError("/after", "send the `next` of a previous page")],
        )
    operators = None if api_key.is_regulator else list(api_key.plmns)
    with context.store().reading() as tx:
        rows = notice_rows.feed_after(tx, operators, after, limit)
    page: dict[str, Any] = {
        "notices": [orjson.loads(value) for _, value in rows],
        "next": rows[-1][0] if rows else after,
    }
    return Response(orjson.dumps(_PAGE.dump(page)), mimetype="application/json")


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidEvents(
            f"limit must be a whole number from 1 to {MAX_LIMIT}.",
            [FieldError("/limit", f"1 to {MAX_LIMIT}")],
        )
    return int(text)
