"""Rotating an operator's API key: create a new one, move the clients, revoke
the old one with `simguard keys revoke`. Both keys work during the overlap;
the old one stops within `api_key_cache_seconds`. Keys are compared by their
stored SHA-256 only, and a wrong secret is refused whatever its length."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from factories import valid_network_event
from flask import Flask
from test_api_ingest import PATHS, module_settings
from worker_helpers import SIMGUARD, settings_env

from service.app import create_app
from service.context import EXTENSION_KEY
from simguard.api_keys import KEY_PREFIX, authenticate, issue_key, revoke
from simguard.broker import KafkaNode
from simguard.settings import ConfigError, Settings, load_settings
from simguard.store import Store, open_store

OPERATOR = "52003"
SHORT_CACHE_SECONDS = 1.0


@dataclass
class Deployment:
    settings: Settings
    store: Store
    apps: list[Flask] = field(default_factory=list)

    def app(self, **overrides: float) -> Flask:
        """A new API process, as a restarted or added gunicorn worker would be."""
        app = create_app(self.settings.replace(**overrides))
        self.apps.append(app)
        return app

    def close(self) -> None:
        for app in self.apps:
            app.extensions[EXTENSION_KEY].close()


@pytest.fixture(scope="module")
def deployment(
    kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    settings = module_settings(kafka_broker, tmp_path_factory.mktemp("key-rotation"))
    deployment = Deployment(settings, open_store(settings.database_url))
    yield deployment
    deployment.close()
    deployment.store.close()


def post(app: Flask, key: str) -> int:
    response = app.test_client().post(
        PATHS["network_events"],
        data=orjson.dumps(valid_network_event()),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    return response.status_code


def key_id_of(key: str) -> str:
    return key.removeprefix(KEY_PREFIX).partition("_")[0]


def revoke_with_cli(settings: Settings, key: str) -> str:
    result = subprocess.run(
        [SIMGUARD, "keys", "revoke", key_id_of(key)],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout


# --- rotation ----------------------------------------------------------------------


def test_both_keys_of_an_operator_work_during_the_overlap(deployment: Deployment) -> None:
    app = deployment.app()
    _, old_key = issue_key(deployment.store, OPERATOR)
    assert post(app, old_key) == 202

    _, new_key = issue_key(deployment.store, OPERATOR)

    assert (post(app, old_key), post(app, new_key)) == (202, 202)


def test_the_revoked_key_stops_at_once_without_a_cache_and_the_new_one_goes_on(
    deployment: Deployment,
) -> None:
    app = deployment.app(api_key_cache_seconds=0)
    _, old_key = issue_key(deployment.store, OPERATOR)
    _, new_key = issue_key(deployment.store, OPERATOR)
    assert (post(app, old_key), post(app, new_key)) == (202, 202)

    printed = revoke_with_cli(deployment.settings, old_key)

    assert printed.strip() == f"revoked {key_id_of(old_key)}"
    assert (post(app, old_key), post(app, new_key)) == (401, 202)


def test_a_cached_key_keeps_working_until_its_cache_entry_expires(
    deployment: Deployment,
) -> None:
    app = deployment.app(api_key_cache_seconds=SHORT_CACHE_SECONDS)
    key_id, old_key = issue_key(deployment.store, OPERATOR)
    assert post(app, old_key) == 202

    revoke(deployment.store, key_id)
    assert post(app, old_key) == 202

    time.sleep(SHORT_CACHE_SECONDS + 0.05)
    assert post(app, old_key) == 401


def test_a_process_started_after_the_revocation_refuses_the_key_at_once(
    deployment: Deployment,
) -> None:
    running = deployment.app()
    _, old_key = issue_key(deployment.store, OPERATOR)
    assert post(running, old_key) == 202

    revoke_with_cli(deployment.settings, old_key)

    # The default 30 s cache: the running process still has the key ...
    assert post(running, old_key) == 202
    # ... a new process (a restarted or scaled-up gunicorn worker) does not.
    assert post(deployment.app(), old_key) == 401


def test_the_key_cache_lifetime_is_configured_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "empty.toml").write_text("")
    environ = {"SIMGUARD_CONFIG": str(tmp_path / "empty.toml")}

    assert load_settings(environ).api_key_cache_seconds == 30.0
    settings = load_settings(environ | {"SIMGUARD_API_KEY_CACHE_SECONDS": "5"})
    assert settings.api_key_cache_seconds == 5.0
    with pytest.raises(ConfigError, match="api_key_cache_seconds"):
        load_settings(environ | {"SIMGUARD_API_KEY_CACHE_SECONDS": "-1"})


# --- comparison --------------------------------------------------------------------


def test_the_right_key_id_with_a_wrong_secret_of_the_same_length_is_refused(
    deployment: Deployment,
) -> None:
    key_id, key = issue_key(deployment.store, OPERATOR)
    secret = key.removeprefix(f"{KEY_PREFIX}{key_id}_")
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]

    assert authenticate(deployment.store, key) is not None
    assert authenticate(deployment.store, f"{KEY_PREFIX}{key_id}_{flipped}") is None
    assert authenticate(deployment.store, f"{KEY_PREFIX}{key_id}_{'x' * len(secret)}") is None


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda secret: secret[:-1], id="one character short"),
        pytest.param(lambda secret: secret + "x", id="one character more"),
        pytest.param(lambda secret: secret[:8], id="a prefix"),
        pytest.param(lambda secret: secret * 2, id="twice as long"),
    ],
)
def test_the_right_key_id_with_a_secret_of_another_length_is_refused(
    deployment: Deployment, change: Callable[[str], str]
) -> None:
    key_id, key = issue_key(deployment.store, OPERATOR)
    secret = key.removeprefix(f"{KEY_PREFIX}{key_id}_")

    assert authenticate(deployment.store, f"{KEY_PREFIX}{key_id}_{change(secret)}") is None


def test_a_secret_under_another_key_id_is_refused(deployment: Deployment) -> None:
    key_id, key = issue_key(deployment.store, OPERATOR)
    other_id, _ = issue_key(deployment.store, OPERATOR)

    assert authenticate(deployment.store, key.replace(key_id, other_id, 1)) is None


def test_only_the_hash_of_a_key_is_stored(deployment: Deployment) -> None:
    key_id, key = issue_key(deployment.store, OPERATOR)
    secret = key.removeprefix(f"{KEY_PREFIX}{key_id}_")

    with deployment.store.reading() as tx:
        row = tx.fetchone("SELECT * FROM api_keys WHERE key_id = ?", (key_id,))

    assert row is not None
    assert not any(secret in str(column) for column in row)
