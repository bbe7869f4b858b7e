"""What an API key may do beyond being active: it stops at its expiry (also
in a process that has it cached), and no two operators' keys hold PLMN ids
of which one starts with the other."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.auth import Authenticator
from service.problems import Unauthenticated
from simguard.api_keys import ApiKey, authenticate, issue_key, list_api_keys, parse_lifetime
from simguard.cli import main
from simguard.store import Store, open_store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return open_store(f"sqlite:///{tmp_path / 'keys.db'}")


def test_a_key_past_its_expiry_is_refused(store: Store) -> None:
    key_id, key = issue_key(store, "52003", expires_in=timedelta(days=1))
    assert authenticate(store, key) is not None
    with store.transaction() as tx:
        tx.execute(
            "UPDATE api_keys SET expires_at = '2026-01-01T00:00:00Z' WHERE key_id = ?", (key_id,)
        )
    assert authenticate(store, key) is None


def test_a_cached_key_stops_at_its_expiry(store: Store) -> None:
    _, key = issue_key(store, "52003", expires_in=timedelta(seconds=2))
    authenticator = Authenticator(lambda: store, ttl_seconds=600)
    assert authenticator.require(f"Bearer {key}").operator == "52003"
    time.sleep(2.5)
    with pytest.raises(Unauthenticated):
        authenticator.require(f"Bearer {key}")


def test_a_key_without_expiry_never_expires(store: Store) -> None:
    _, key = issue_key(store, "52003")
    (listed,) = list_api_keys(store)
    assert listed.expires_at is None
    assert authenticate(store, key) is not None


@pytest.mark.parametrize(
    ("held", "wanted"),
    [("31041", "310410"), ("310410", "31041"), ("52003", "52003")],
    ids=["longer-after-shorter", "shorter-after-longer", "the-same"],
)
def test_a_plmn_id_overlapping_another_operators_is_refused(
    store: Store, held: str, wanted: str
) -> None:
    issue_key(store, "52001", [held])
    with pytest.raises(ValueError, match=f"PLMN id {wanted} overlaps {held}"):
        issue_key(store, "52018", [wanted])


def test_one_operator_may_hold_several_keys_for_its_plmn_ids(store: Store) -> None:
    issue_key(store, "31041")
    issue_key(store, "31041", ["31042"])
    assert len(list_api_keys(store)) == 2


def test_a_revoked_keys_plmn_ids_may_be_given_to_another_operator(store: Store) -> None:
    from simguard.api_keys import revoke

    key_id, _ = issue_key(store, "52001", ["31041"])
    revoke(store, key_id)
    issue_key(store, "52018", ["310410"])


@pytest.mark.parametrize(
    ("text", "lifetime"),
    [("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30))],
)
def test_lifetimes_read_as_days_hours_or_minutes(text: str, lifetime: timedelta) -> None:
    assert parse_lifetime(text) == lifetime


@pytest.mark.parametrize("text", ["", "d", "90", "1w", "-1d", "٣d"])
def test_other_lifetimes_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="lifetime"):
        parse_lifetime(text)


def test_keys_create_expires_in_sets_the_expiry(tmp_path: Path) -> None:
    config = tmp_path / "simguard.toml"
    config.write_text("")
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    environ = {"SIMGUARD_CONFIG": str(config), "SIMGUARD_DATABASE_URL": database}
    result = CliRunner().invoke(
        main, ["keys", "create", "--operator", "52003", "--expires-in", "90d"], env=environ
    )
    assert result.exit_code == 0, result.output
    (listed,) = list_api_keys(open_store(database))
    assert listed.expires_at is not None and listed.expires_at > listed.created_at
    listing = CliRunner().invoke(main, ["keys", "list"], env=environ)
    assert f"expires={listed.expires_at}" in listing.output


def test_keys_create_regulator_makes_a_key_without_plmn_ids(tmp_path: Path) -> None:
    config = tmp_path / "simguard.toml"
    config.write_text("")
    database = f"sqlite:///{tmp_path / 'cli.db'}"
    environ = {"SIMGUARD_CONFIG": str(config), "SIMGUARD_DATABASE_URL": database}
    result = CliRunner().invoke(main, ["keys", "create", "--regulator", "nbtc"], env=environ)
    assert result.exit_code == 0, result.output
    (listed,) = list_api_keys(open_store(database))
    assert (listed.role, listed.operator, listed.plmns) == ("regulator", "nbtc", ())


def test_keys_create_needs_exactly_one_of_operator_and_regulator(tmp_path: Path) -> None:
    config = tmp_path / "simguard.toml"
    config.write_text("")
    environ = {
        "SIMGUARD_CONFIG": str(config),
        "SIMGUARD_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
    }
    both = ["keys", "create", "--operator", "52003", "--regulator", "nbtc"]
    assert CliRunner().invoke(main, both, env=environ).exit_code != 0
    assert CliRunner().invoke(main, ["keys", "create"], env=environ).exit_code != 0


@pytest.mark.parametrize("stored", ["2026-12-06T10:00:00Z", "2026-12-06T10:00:00.000000Z"])
def test_an_expiry_in_either_stored_precision_is_judged_by_time(stored: str) -> None:
    key = ApiKey("k", "52001", ("52001",), "2026-12-01T00:00:00Z", None, expires_at=stored)

    assert not key.expired(datetime(2026, 12, 6, 9, 59, 59, 999_999, tzinfo=UTC))
    assert key.expired(datetime(2026, 12, 6, 10, 0, 0, 500_000, tzinfo=UTC))
