"""The API's gunicorn logger: the app logs each request itself, so gunicorn
must not build an access line per request only for logging to drop it."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

from gunicorn.config import Config

from service import gunicorn_conf


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_served_request_gives_gunicorn_no_access_record() -> None:
    cfg = Config()
    cfg.set("logconfig_dict", gunicorn_conf.logconfig_dict)
    cfg.set("logger_class", gunicorn_conf.logger_class)
    logger = cfg.logger_class(cfg)
    kept = Kept()
    access = logging.getLogger("gunicorn.access")
    access.addHandler(kept)
    response = SimpleNamespace(status="202 Accepted", headers=[], response_length=2, sent=2)
    request = SimpleNamespace(headers=[], method="POST", path="/v1/activations", query="")
    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": "/v1/activations",
        "SERVER_PROTOCOL": "HTTP/1.1",
    }
    try:
        logger.access(response, request, environ, timedelta(milliseconds=3))
    finally:
        access.removeHandler(kept)

    assert kept.records == []
