"""Start-up checks shared by the app factory and the gunicorn master."""

from __future__ import annotations

import sys

from simguard.settings import ConfigError, Settings


def require_hmac_secret(settings: Settings) -> None:
    if not settings.hmac_secret:
        raise ConfigError(
            "hmac_secret is not set: set SIMGUARD_HMAC_SECRET or hmac_secret_file. "
            "The API refuses to start without it, because registrations' identity "
            "numbers must be pseudonymised before they are published."
        )
    if not settings.attestation_secret:
        raise ConfigError(
            "attestation_secret is not set: set SIMGUARD_ATTESTATION_SECRET or "
            "attestation_secret_file. The API signs every record it validated with it; "
            "it must differ from hmac_secret."
        )


def prometheus_multiprocess_ready() -> bool:
    """False when prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR
    was set: its values would then live in each worker's memory only."""
    values = sys.modules.get("prometheus_client.values")
    if values is None:
        return True
    value_class = getattr(values, "ValueClass", None)
    return value_class is not None and value_class.__name__ != "MutexValue"
