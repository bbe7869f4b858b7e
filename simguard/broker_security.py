"""How a local Kafka node simguard starts is secured: TLS on every listener,
SASL/SCRAM for clients, ACLs enforced.

- The client listener (`SASL_SSL`) takes SCRAM-SHA-512 over TLS; brokers use
  it between themselves too, as the admin user.
- The controller listener (`CONTROLLER`) is TLS with client certificates: a
  KRaft controller cannot check SCRAM passwords (they live in the metadata it
  serves), so nodes prove themselves with the broker certificate.
- `StandardAuthorizer` with no ACL meaning no access; the admin user and the
  broker certificate are the only super users. Everything else is granted by
  `simguard topics ensure --acls` (`simguard.kafka_acls`).

The CA, the broker certificate and the admin password are made once in the
security directory, owner-only, and reused by every node and restart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simguard import tls

ADMIN_USER = "simguard-admin"
SCRAM_MECHANISM = "SCRAM-SHA-512"
BROKER_COMMON_NAME = "simguard-broker"
CLIENT_LISTENER = "SASL_SSL"
CONTROLLER_LISTENER = "CONTROLLER"
SERVICE_USER = "simguard"
_FILES = ("ca.pem", "ca-key.pem", "broker.pem", "admin-password", "simguard-password")


@dataclass(frozen=True)
class BrokerSecurity:
    """The secrets of the local nodes secured from one directory."""

    directory: Path

    @classmethod
    def create(cls, directory: Path) -> BrokerSecurity:
        """Make the CA, broker certificate and admin password unless they exist."""
        directory = directory.resolve()
        security = cls(directory)
        if all((directory / name).is_file() for name in _FILES):
            return security
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        ca = tls.make_ca("simguard local CA")
        broker = tls.issue(ca, BROKER_COMMON_NAME)
        (directory / "ca.pem").write_bytes(ca.certificate)
        tls.write_private(directory / "ca-key.pem", ca.key)
        # Java's PEM keystore: the private key, then the certificate chain.
        keystore = broker.key + broker.certificate + ca.certificate
        tls.write_private(directory / "broker.pem", keystore)
        tls.write_private(directory / "admin-password", secrets.token_hex(24).encode())
        tls.write_private(directory / "simguard-password", secrets.token_hex(24).encode())
        return security

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def keystore_file(self) -> Path:
        return self.directory / "broker.pem"

    @property
    def admin_password(self) -> str:
        return (self.directory / "admin-password").read_text().strip()

    @property
    def service_password_file(self) -> Path:
        """simguard's own SCRAM password (API and workers), made with the rest."""
        return self.directory / "simguard-password"

    def issue(self, common_name: str) -> tls.Issued:
        """Another certificate from this CA (for a client that uses mTLS)."""
        ca = tls.Issued(
            (self.directory / "ca.pem").read_bytes(), (self.directory / "ca-key.pem").read_bytes()
        )
        return tls.issue(ca, common_name)

    def server_properties(self, port: int, controller_port: int) -> dict[str, str]:
        jaas = (
            "org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{ADMIN_USER}" password="{self.admin_password}";'
        )
        scram_key = f"listener.name.{CLIENT_LISTENER.lower()}.{SCRAM_MECHANISM.lower()}"
        return {
            "listeners": (
                f"{CLIENT_LISTENER}://127.0.0.1:{port},"
                f"{CONTROLLER_LISTENER}://127.0.0.1:{controller_port}"
            ),
            "advertised.listeners": f"{CLIENT_LISTENER}://127.0.0.1:{port}",
            "listener.security.protocol.map": (
                f"{CLIENT_LISTENER}:SASL_SSL,{CONTROLLER_LISTENER}:SSL"
            ),
            "inter.broker.listener.name": CLIENT_LISTENER,
            "sasl.enabled.mechanisms": SCRAM_MECHANISM,
            "sasl.mechanism.inter.broker.protocol": SCRAM_MECHANISM,
            f"{scram_key}.sasl.jaas.config": jaas,
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(self.keystore_file),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(self.ca_file),
            "ssl.endpoint.identification.algorithm": "https",
            f"listener.name.{CONTROLLER_LISTENER.lower()}.ssl.client.auth": "required",
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "allow.everyone.if.no.acl.found": "false",
            "super.users": f"User:{ADMIN_USER};User:CN={BROKER_COMMON_NAME}",
        }

    def format_arguments(self) -> list[str]:
        """The admin's SCRAM credential, written into the metadata at format:
        brokers need it to talk to each other before anyone could add it."""
        credential = f"{SCRAM_MECHANISM}=[name={ADMIN_USER},password={self.admin_password}]"
        return ["--add-scram", credential]

    def admin_client_config(self) -> dict[str, Any]:
        """kafka-python settings for connecting as the admin user."""
        return {
            "security_protocol": "SASL_SSL",
            "ssl_cafile": str(self.ca_file),
            "sasl_mechanism": SCRAM_MECHANISM,
            "sasl_plain_username": ADMIN_USER,
            "sasl_plain_password": self.admin_password,
        }

    def admin_settings(self) -> dict[str, str]:
        """The same, as simguard settings (`Settings.replace(**...)`)."""
        return self.user_settings(ADMIN_USER, self.admin_password)

    def user_settings(self, user: str, password: str) -> dict[str, str]:
        """Simguard settings for connecting to these nodes as `user`."""
        return {
            "kafka_security_protocol": "SASL_SSL",
            "kafka_ssl_cafile": str(self.ca_file),
            "kafka_sasl_mechanism": SCRAM_MECHANISM,
            "kafka_sasl_username": user,
            "kafka_sasl_password": password,
        }

    def service_settings(self) -> dict[str, str]:
        """As simguard's own principal, the one the API and workers use."""
        password = self.service_password_file.read_text().strip()
        return self.user_settings(SERVICE_USER, password)


def security_of(properties: dict[str, str]) -> BrokerSecurity | None:
    """The security a node was configured with, from its server.properties."""
    truststore = properties.get("ssl.truststore.location")
    return BrokerSecurity(Path(truststore).parent) if truststore else None
