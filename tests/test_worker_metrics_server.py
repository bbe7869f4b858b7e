"""The worker's /metrics and /healthz server: a real HTTP server on a real port."""

from __future__ import annotations

import socket
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

import pytest

from simguard.broker import free_port
from simguard.settings import Settings
from workers.main import serve_metrics


@dataclass
class _Steps:
    last_step_at: float = field(default_factory=time.monotonic)


@pytest.fixture
def server() -> Iterator[WSGIServer]:
    running = serve_metrics(Settings().worker_metrics_host, free_port(), _Steps())
    yield running
    running.shutdown()
    running.server_close()


def test_healthz_answers_while_another_client_holds_a_half_sent_request(
    server: WSGIServer,
) -> None:
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), port)) as stalled:
        stalled.sendall(b"GET /healthz HTTP/1.1\r\nHost: worker\r\n")  # no blank line: unfinished
        time.sleep(0.2)
        with urllib.request.urlopen(f"http://{host}:{port}/healthz", timeout=2) as answer:
            assert answer.status == 200
            assert answer.read() == b"ok\n"


def test_metrics_listen_on_the_loopback_address_unless_configured() -> None:
    assert Settings().worker_metrics_host == "127.0.0.1"


def test_metrics_server_binds_the_configured_host(server: WSGIServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
