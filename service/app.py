"""The Flask application factory.

`create_app()` reads the settings (or takes them), refuses to build an app
that could not pseudonymise holders, and wires the blueprints, the request
hooks (timer, correlator, metrics, log line) and the problem handlers, and
puts the ingest routes' WSGI front before Flask. It
opens no connection: Kafka and the store are reached on first use, in the
process (gunicorn worker) that serves the request.
"""

from __future__ import annotations

from flask import Flask

from service import (
    allow_list,
    cases,
    foreign_indicators,
    health,
    http_metrics,
    notices,
    openapi,
    sims,
)
from service.context import EXTENSION_KEY, ServiceContext
from service.correlator import echo_correlator, take_correlator
from service.ingest import create_ingest_blueprint, ingest_routes
from service.ingest_front import IngestFront
from service.problems import register_problem_handlers
from service.request_log import configure_logging, log_request, start_timer
from service.startup import require_hmac_secret
from simguard.settings import Settings, load_settings


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings if settings is not None else load_settings()
    require_hmac_secret(settings)
    configure_logging(settings.log_level)

    # No static files: every route is an API route and is in the OpenAPI document.
    app = Flask(__name__, static_folder=None)
    # werkzeug enforces it while reading, chunked bodies included.
    app.config["MAX_CONTENT_LENGTH"] = settings.api_max_body_bytes
    context = ServiceContext.create(settings)
    app.extensions[EXTENSION_KEY] = context

    app.before_request(start_timer)
    app.before_request(take_correlator)
    # after_request hooks run in reverse order of registration: the log line
    # is written last, with the final status.
    app.after_request(log_request)
    app.after_request(http_metrics.observe_request)
    app.after_request(echo_correlator)

    routes = ingest_routes(settings)
    app.register_blueprint(create_ingest_blueprint(routes, settings.api_max_batch_events))
    app.register_blueprint(sims.blueprint)
    app.register_blueprint(cases.blueprint)
    app.register_blueprint(notices.blueprint)
    app.register_blueprint(allow_list.blueprint)
    app.register_blueprint(foreign_indicators.blueprint)
    app.register_blueprint(health.blueprint)
    app.register_blueprint(http_metrics.blueprint)
    app.register_blueprint(openapi.blueprint)
    register_problem_handlers(app)
    # The ingest POSTs skip Flask's per-request machinery (service.ingest_front).
    app.wsgi_app = IngestFront(app.wsgi_app, routes, context)  # type: ignore[method-assign]
    return app
