"""The ingest routes served in front of Flask, straight from WSGI.

An operator streaming one event per request pays Flask's machinery on every
event: request and app contexts, URL matching, the hooks, the Response
object. On this 2-core machine that was a quarter of the API's CPU per
single-event request (bench/ANALYSIS.md), so `IngestFront` takes the POSTs to
the three ingest paths itself and hands every other request to Flask.

What a client and an operations team see is the same either way: the same
answers (service.ingest.accept), problem documents (service.problems), the
x-correlator, the per-request metrics and the one log line. The routes stay
in Flask's URL map too, which documents them and answers other methods 405.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.wrappers import Request

from service import http_metrics
from service.context import ServiceContext
from service.correlator import HEADER as CORRELATOR_HEADER
from service.correlator import correlator_for, refused_correlator
from service.ingest import Exchange, IngestRoute, accept
from service.problems import (
    Answer,
    Problem,
    answer_http_exception,
    answer_problem,
    answer_unexpected,
)
from service.request_log import write_request_line

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class IngestFront:
    """WSGI middleware: the ingest POSTs here, everything else to `app`."""

    def __init__(
        self,
        app: WSGIApplication,
        routes: Mapping[str, IngestRoute],
        context: ServiceContext,
    ) -> None:
        self.app = app
        self._routes = dict(routes)
        self._context = context

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = self._routes.get(environ.get("PATH_INFO", ""))
        if route is None or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        started = time.perf_counter()
        request = Request(environ)
        correlator, acceptable = correlator_for(request.headers.get(CORRELATOR_HEADER, ""))
        exchange = Exchange(correlator)
        if acceptable:
            answer = self._answer(route, request, exchange)
        else:
            answer = answer_problem(refused_correlator(), correlator)
        start_response(_status_line(answer.status), _headers(answer, exchange.correlator))
        seconds = time.perf_counter() - started
        http_metrics.observe(route.path, "POST", answer.status, seconds)
        write_request_line(
            method="POST",
            route=route.path,
            status=answer.status,
            correlator=exchange.correlator,
            operator=exchange.operator,
            seconds=seconds,
            accepted=exchange.accepted,
        )
        return [answer.body]

    def _answer(self, route: IngestRoute, request: Request, exchange: Exchange) -> Answer:
        try:
            return accept(route, self._context, request, exchange)
        except Problem as problem:
            return answer_problem(problem, exchange.correlator)
        except HTTPException as error:
            # A body that broke off mid-read, for one.
            return answer_http_exception(error, exchange.correlator)
        except Exception:
            return answer_unexpected(exchange.correlator)


def _status_line(status: int) -> str:
    # werkzeug's wording, so an answer reads the same from either path.
    return f"{status} {HTTP_STATUS_CODES.get(status, 'UNKNOWN').upper()}"


def _headers(answer: Answer, correlator: str) -> list[tuple[str, str]]:
    return [
        ("Content-Type", answer.media_type),
        ("Content-Length", str(len(answer.body))),
        *answer.headers.items(),
        (CORRELATOR_HEADER, correlator),
    ]
