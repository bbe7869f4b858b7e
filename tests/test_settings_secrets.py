"""The three secrets, one job each: pseudonymising holders (hmac_secret),
marking records the API validated (attestation_secret) and deriving
operators' Kafka record-signing keys (operator_signing_secret). None comes
from the TOML file, and no two may be equal."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from schemas import operator_signature
from simguard.cli import main
from simguard.settings import FILE_SECRETS, HMAC_SECRETS, ConfigError, Settings, load_settings

ROOT_SECRET = "operator-signing-root-" + "1" * 42


def settings_from(tmp_path: Path, toml: str = "", **environ: str) -> Settings:
    config = tmp_path / "simguard.toml"
    config.write_text(toml)
    return load_settings(environ={"SIMGUARD_CONFIG": str(config), **environ})


@pytest.mark.parametrize("secret", FILE_SECRETS)
def test_a_secret_in_the_toml_file_is_refused(tmp_path: Path, secret: str) -> None:
    with pytest.raises(ConfigError, match=f"{secret} must not be in the TOML file"):
        settings_from(tmp_path, f'{secret} = "written-into-the-repository"\n')


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("hmac_secret", "attestation_secret"),
        ("hmac_secret", "operator_signing_secret"),
        ("attestation_secret", "operator_signing_secret"),
    ],
)
def test_two_secrets_with_one_value_are_refused(tmp_path: Path, first: str, second: str) -> None:
    shared = "one-value-for-two-jobs-" + "0" * 41
    environ = {f"SIMGUARD_{first.upper()}": shared, f"SIMGUARD_{second.upper()}": shared}
    with pytest.raises(ConfigError, match=f"{first} and {second} must differ"):
        settings_from(tmp_path, **environ)


@pytest.mark.parametrize("secret", ["attestation_secret", "operator_signing_secret"])
def test_a_secret_is_read_from_its_file(tmp_path: Path, secret: str) -> None:
    path = tmp_path / secret
    path.write_text("from-a-mounted-secret-of-32-bytes\n")
    settings = settings_from(tmp_path, f'{secret}_file = "{path}"\n')
    assert getattr(settings, secret) == "from-a-mounted-secret-of-32-bytes"


def test_an_unreadable_secret_file_is_a_configuration_error(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="attestation_secret_file unreadable"):
        settings_from(tmp_path, f'attestation_secret_file = "{missing}"\n')


def test_kafka_signing_key_prints_the_key_a_worker_verifies_with(tmp_path: Path) -> None:
    config = tmp_path / "simguard.toml"
    config.write_text("")
    environ = {
        "SIMGUARD_CONFIG": str(config),
        "SIMGUARD_OPERATOR_SIGNING_SECRET": ROOT_SECRET,
    }
    result = CliRunner().invoke(main, ["keys", "kafka-signing-key", "--plmn", "52003"], env=environ)
    assert result.exit_code == 0, result.output
    key = bytes.fromhex(result.output.splitlines()[-1])
    record_key, value = b"520030000000007", b'{"operator": "52003"}'
    signature = operator_signature.sign(key, record_key, value)
    assert operator_signature.verify(ROOT_SECRET, "52003", record_key, value, signature)
    assert not operator_signature.verify(ROOT_SECRET, "52018", record_key, value, signature)


def test_kafka_signing_key_refuses_what_is_not_a_plmn_id(tmp_path: Path) -> None:
    config = tmp_path / "simguard.toml"
    config.write_text("")
    environ = {
        "SIMGUARD_CONFIG": str(config),
        "SIMGUARD_OPERATOR_SIGNING_SECRET": ROOT_SECRET,
    }
    result = CliRunner().invoke(main, ["keys", "kafka-signing-key", "--plmn", "5200"], env=environ)
    assert result.exit_code != 0
    assert "is not a PLMN id" in result.output


@pytest.mark.parametrize("secret", HMAC_SECRETS)
def test_a_secret_under_32_bytes_is_refused(tmp_path: Path, secret: str) -> None:
    environ = {f"SIMGUARD_{secret.upper()}": "a-31-byte-secret-".ljust(31, "x")}
    with pytest.raises(ConfigError, match=f"{secret} is 31 bytes; at least 32"):
        settings_from(tmp_path, **environ)


def test_sasl_without_tls_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SASL only inside TLS"):
        settings_from(tmp_path, SIMGUARD_KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT")


def test_sasl_ssl_without_a_password_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs kafka_sasl_username and kafka_sasl_password"):
        settings_from(
            tmp_path,
            SIMGUARD_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
            SIMGUARD_KAFKA_SASL_USERNAME="simguard",
        )


def test_the_kafka_password_is_read_from_its_file_and_masked(tmp_path: Path) -> None:
    password = tmp_path / "kafka-password"
    password.write_text("a-mounted-kafka-password\n")
    settings = settings_from(
        tmp_path,
        SIMGUARD_KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        SIMGUARD_KAFKA_SASL_USERNAME="simguard",
        SIMGUARD_KAFKA_SASL_PASSWORD_FILE=str(password),
    )
    assert settings.kafka_sasl_password == "a-mounted-kafka-password"
    assert settings.masked()["kafka_sasl_password"] == "***"


def test_a_missing_ca_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kafka_ssl_cafile not found"):
        settings_from(
            tmp_path,
            SIMGUARD_KAFKA_SECURITY_PROTOCOL="SSL",
            SIMGUARD_KAFKA_SSL_CAFILE=str(tmp_path / "nowhere.pem"),
        )
