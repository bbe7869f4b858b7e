"""`simguard api`: the API under gunicorn, configured from service.gunicorn_conf."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from typing import Any, Final

from gunicorn.app.base import Application
from gunicorn.util import is_ipv6, parse_address

from service.rate_limit import PROCESSES_ENV, RateLimitPolicy
from service.startup import prometheus_multiprocess_ready, require_hmac_secret
from simguard.settings import ConfigError, load_settings

CONFIG_MODULE: Final = "python:service.gunicorn_conf"
DEFAULT_MULTIPROC_DIR: Final = "var/prometheus-multiproc"


class SimguardApplication(Application):  # type: ignore[misc]
    """gunicorn's Application without its command-line parsing: `simguard api`
    owns the command line, and gunicorn's parser would reject its options."""

    def __init__(self, bind: str, workers: int) -> None:
        self._bind = bind
        self._workers = workers
        super().__init__(usage=None, prog="simguard api")

    def load_config(self) -> None:
        self.load_config_from_module_name_or_filename(CONFIG_MODULE)
        parser = self.cfg.parser()
        from_environment = parser.parse_args(self.cfg.get_cmd_args_from_env())
        for name, value in vars(from_environment).items():
            if value is not None and name != "args":
                self.cfg.set(name.lower(), value)
        self.cfg.set("bind", [self._bind])
        self.cfg.set("workers", self._workers)
        # Each worker opens its own listening socket on a TCP port and the
        # kernel spreads new connections over them. With one shared socket,
        # whichever worker wakes first accepts a burst of connections: 28 of
        # 32 keep-alive clients on one process (one core) was seen. A Unix
        # socket path cannot be shared that way.
        self.cfg.set("reuse_port", _tcp_address(self._bind) is not None)

    def init(self, parser: Any, opts: Any, args: Any) -> None:
        return None

    def load(self) -> Any:
        # Runs in each worker after the fork (preload_app is off).
        from service.app import create_app

        return create_app()


def run_gunicorn(bind: str, workers: int) -> None:
    # prometheus_client picks its multiprocess value files when it is first
    # imported, so the directory must be in the environment before any worker
    # (or this master, which they fork from) imports it.
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or DEFAULT_MULTIPROC_DIR
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(multiproc_dir).resolve())
    if not prometheus_multiprocess_ready():
        sys.exit("simguard api: prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR")
    # Each worker process keeps its own rate-limit buckets; knowing how many
    # share the instance, each admits its share of the configured limit.
    os.environ[PROCESSES_ENV] = str(workers)
    _check_settings(workers)
    _check_address_free(bind)
    SimguardApplication(bind=bind, workers=workers).run()


def _check_settings(workers: int) -> None:
    """Fail in the master with a clear message, not in every worker's boot."""
    try:
        settings = load_settings()
        require_hmac_secret(settings)
        RateLimitPolicy.from_settings(settings, workers)
    except ConfigError as error:
        sys.exit(f"simguard api: configuration: {error}")


def _tcp_address(bind: str) -> tuple[str, int] | None:
    address = parse_address(bind)
    return address if isinstance(address, tuple) else None


def _check_address_free(bind: str) -> None:
    """Exit with a message when the port is taken.

    The workers open their own sockets (reuse_port); one that cannot would
    exit and be restarted by the master for ever, instead of stopping here.
    """
    address = _tcp_address(bind)
    if address is None:
        return
    host, port = address
    # The address family as gunicorn chooses it (gunicorn.sock).
    family = socket.AF_INET6 if is_ipv6(host) else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as error:
        sys.exit(f"simguard api: cannot listen on {bind}: {error.strerror or error}")
