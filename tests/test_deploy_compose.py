"""deploy/compose.yaml is a valid Compose file (the compose-spec JSON schema,
checked offline with check-jsonschema's bundled copy; there is no Docker engine
here) and wires the services the way the README's `docker compose up` expects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from simguard.broker_config import read_properties

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
COMPOSE_FILE = DEPLOY_DIR / "compose.yaml"
SERVICES = ("pki", "kafka", "topics", "api", "worker", "prometheus", "grafana")
# Services that keep running; `pki` makes certificates and `topics` the
# topics, user and ACLs, and they exit.
LONG_RUNNING = tuple(s for s in SERVICES if s not in ("pki", "topics"))
KAFKA_PROPERTIES = DEPLOY_DIR / "kafka" / "compose-server.properties"
SIMGUARD_PROCESSES = ("api", "worker")


def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def service(name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"][name]
    return found


def test_compose_file_validates_against_the_compose_spec_schema() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "check_jsonschema",
            "--builtin-schema",
            "vendor.compose-spec",
            str(COMPOSE_FILE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_part_of_simguard() -> None:
    assert set(compose()["services"]) == set(SERVICES)


def kafka_properties() -> dict[str, str]:
    return read_properties(KAFKA_PROPERTIES)


def test_kafka_is_the_official_image_run_from_simguards_kraft_properties() -> None:
    kafka = service("kafka")

    assert kafka["image"] == "apache/kafka:4.1.0"
    mount = "./kafka/compose-server.properties:/etc/simguard/server.properties:ro"
    assert mount in kafka["volumes"]
    assert kafka_properties()["process.roles"] == "broker,controller"


def test_every_kafka_listener_is_tls() -> None:
    properties = kafka_properties()
    protocols = dict(
        entry.split(":") for entry in properties["listener.security.protocol.map"].split(",")
    )
    listeners = [entry.split("://")[0] for entry in properties["listeners"].split(",")]

    assert {protocols[name] for name in listeners} <= {"SSL", "SASL_SSL"}
    assert properties["listener.name.internal.ssl.client.auth"] == "required"
    assert properties["listener.name.controller.ssl.client.auth"] == "required"


def test_kafka_enforces_acls_with_no_access_by_default() -> None:
    properties = kafka_properties()

    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["allow.everyone.if.no.acl.found"] == "false"
    assert properties["super.users"] == "User:CN=simguard-broker;User:CN=simguard-admin"


@pytest.mark.parametrize("name", SIMGUARD_PROCESSES)
def test_simguard_process_logs_in_to_kafka_with_scram_over_tls(name: str) -> None:
    environment = service(name)["environment"]

    assert environment["SIMGUARD_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert environment["SIMGUARD_KAFKA_SASL_USERNAME"] == "simguard"
    password_file = environment["SIMGUARD_KAFKA_SASL_PASSWORD_FILE"]
    assert password_file == "/run/secrets/kafka_simguard_password"
    assert "kafka_simguard_password" in service(name)["secrets"]


def test_the_topics_job_makes_the_acls_as_the_admin_certificate() -> None:
    topics = service("topics")

    assert "topics ensure --acls" in topics["entrypoint"][-1]
    assert topics["environment"]["SIMGUARD_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert topics["environment"]["SIMGUARD_KAFKA_SSL_CERTFILE"] == "/etc/kafka/pki/admin.pem"


@pytest.mark.parametrize("name", LONG_RUNNING)
def test_long_running_service_has_a_healthcheck(name: str) -> None:
    assert service(name)["healthcheck"]["test"]


SECRETS = ("hmac_secret", "attestation_secret", "operator_signing_secret")


@pytest.mark.parametrize("name", SIMGUARD_PROCESSES)
@pytest.mark.parametrize("secret", SECRETS)
def test_simguard_process_reads_each_secret_from_a_compose_secret(name: str, secret: str) -> None:
    spec = service(name)
    variable = f"SIMGUARD_{secret.upper()}"

    assert variable not in spec["environment"]
    assert spec["environment"][f"{variable}_FILE"] == f"/run/secrets/{secret}"
    assert secret in spec["secrets"]
    assert compose()["secrets"][secret] == {"environment": variable}


@pytest.mark.parametrize("name", SIMGUARD_PROCESSES)
def test_simguard_process_waits_for_the_topics(name: str) -> None:
    assert service(name)["depends_on"]["topics"] == {"condition": "service_completed_successfully"}


def test_api_serves_on_8080_with_a_multiprocess_metrics_dir() -> None:
    api = service("api")

    assert api["command"][:3] == ["api", "--bind", "0.0.0.0:8080"]
    assert api["environment"]["PROMETHEUS_MULTIPROC_DIR"] in api["tmpfs"]


def test_worker_is_given_time_to_drain_on_stop() -> None:
    seconds = int(service("worker")["stop_grace_period"].removesuffix("s"))

    assert seconds >= 60


def test_bind_mounts_point_at_files_in_the_repository() -> None:
    sources = [
        volume.split(":")[0]
        for spec in compose()["services"].values()
        for volume in spec.get("volumes", [])
        if volume.startswith(".")
    ]

    assert sources
    assert [s for s in sources if not (DEPLOY_DIR / s).exists()] == []


def test_prometheus_scrapes_the_compose_service_names() -> None:
    mounted = next(
        volume.split(":")[0]
        for volume in service("prometheus")["volumes"]
        if volume.endswith(":/etc/prometheus/prometheus.yml:ro")
    )
    with (DEPLOY_DIR / mounted).open() as handle:
        config = yaml.safe_load(handle)
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }

    assert targets == {"simguard-api": ["api:8080"], "simguard-worker": ["worker:9464"]}


def test_grafana_loads_the_dashboard_where_the_provider_looks() -> None:
    with (DEPLOY_DIR / "grafana" / "provisioning" / "dashboards" / "simguard.yaml").open() as f:
        provider_path = yaml.safe_load(f)["providers"][0]["options"]["path"]
    targets = [volume.split(":")[1] for volume in service("grafana")["volumes"]]

    assert f"{provider_path}/simguard-dashboard.json" in targets
