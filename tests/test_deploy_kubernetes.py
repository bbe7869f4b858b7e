"""The Kubernetes manifests in deploy/kubernetes/ are valid Kubernetes objects
(checked offline against the API's JSON schemas), fit together (every selector,
ConfigMap and Secret they name exists), and carry what running simguard needs:
probes on the right endpoints, a non-root read-only container, a configuration
simguard accepts."""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from simguard.settings import load_settings

REPO_ROOT = Path(__file__).resolve().parents[1]
KUBERNETES_DIR = REPO_ROOT / "deploy" / "kubernetes"
KUSTOMIZATION = KUBERNETES_DIR / "kustomization.yaml"
MANIFESTS = sorted(p.name for p in KUBERNETES_DIR.glob("*.yaml") if p != KUSTOMIZATION)
# The oldest Kubernetes minor the manifests promise to run on, and the newest
# whose schemas kubernetes-validate ships.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
CONFIG_MOUNT_PATH = "/etc/simguard"


def load_documents(name: str) -> list[dict[str, Any]]:
    with (KUBERNETES_DIR / name).open() as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc]


def kustomization() -> dict[str, Any]:
    with KUSTOMIZATION.open() as handle:
        loaded: dict[str, Any] = yaml.safe_load(handle)
    return loaded


def objects() -> list[dict[str, Any]]:
    """Every object the kustomization applies."""
    return [doc for name in kustomization()["resources"] for doc in load_documents(name)]


def find(kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects() if o["kind"] == kind and o["metadata"]["name"] == name)


def pod_templates() -> list[dict[str, Any]]:
    return [o["spec"]["template"] for o in objects() if "template" in o.get("spec", {})]


def simguard_deployments() -> list[dict[str, Any]]:
    return [find("Deployment", "simguard-api"), find("StatefulSet", "simguard-worker")]


def only_container(workload: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def selects_a_pod(selector: dict[str, str]) -> bool:
    return any(
        selector.items() <= template["metadata"]["labels"].items() for template in pod_templates()
    )


def config_map_files() -> dict[str, str]:
    data: dict[str, str] = find("ConfigMap", "simguard-config")["data"]
    return data


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("manifest", MANIFESTS)
def test_manifest_validates_against_the_kubernetes_schema(manifest: str, version: str) -> None:
    errors: list[str] = []
    for doc in load_documents(manifest):
        what = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            location = ".".join(str(part) for part in error.path)
            errors.append(f"{what}: {location}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError as error:
            errors.append(f"{what}: {error.message}")

    assert errors == []


def test_kustomization_lists_every_manifest_in_the_directory() -> None:
    assert sorted(kustomization()["resources"]) == MANIFESTS


def test_kustomization_deploys_the_expected_kinds() -> None:
    kinds = Counter(o["kind"] for o in objects())

    assert kinds >= Counter(
        {
            "Namespace": 1,
            "ConfigMap": 1,
            "Secret": 1,
            "Deployment": 1,
            "StatefulSet": 2,
            "Service": 1,
            "HorizontalPodAutoscaler": 1,
            "PodDisruptionBudget": 2,
        }
    )


def test_every_object_is_in_the_simguard_namespace() -> None:
    namespace = kustomization()["namespace"]
    elsewhere = [
        o["metadata"]["name"]
        for o in objects()
        if o["kind"] != "Namespace" and o["metadata"].get("namespace") != namespace
    ]

    assert elsewhere == []


def test_every_service_selects_pods() -> None:
    services = [o for o in objects() if o["kind"] == "Service"]

    assert [
        s["metadata"]["name"] for s in services if not selects_a_pod(s["spec"]["selector"])
    ] == []


def test_every_disruption_budget_selects_pods() -> None:
    budgets = [o for o in objects() if o["kind"] == "PodDisruptionBudget"]

    assert [
        b["metadata"]["name"]
        for b in budgets
        if not selects_a_pod(b["spec"]["selector"]["matchLabels"])
    ] == []


def test_api_and_worker_each_have_a_disruption_budget() -> None:
    budgets = [o for o in objects() if o["kind"] == "PodDisruptionBudget"]
    for deployment in simguard_deployments():
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]

        assert any(
            b["spec"]["selector"]["matchLabels"].items() <= pod_labels.items() for b in budgets
        )


def test_autoscaler_scales_the_api_deployment() -> None:
    autoscaler = find("HorizontalPodAutoscaler", "simguard-api")
    target = autoscaler["spec"]["scaleTargetRef"]

    assert (target["kind"], target["name"]) == ("Deployment", "simguard-api")
    assert "replicas" not in find("Deployment", "simguard-api")["spec"]


def test_api_keeps_serving_while_its_budget_allows_a_disruption() -> None:
    minimum = find("HorizontalPodAutoscaler", "simguard-api")["spec"]["minReplicas"]
    budget = find("PodDisruptionBudget", "simguard-api")["spec"]["maxUnavailable"]

    assert minimum - budget >= 2


def test_every_config_map_and_secret_a_pod_uses_exists() -> None:
    present = {(o["kind"], o["metadata"]["name"]) for o in objects()}
    used: set[tuple[str, str]] = set()
    for template in pod_templates():
        for volume in template["spec"].get("volumes", []):
            if "configMap" in volume:
                used.add(("ConfigMap", volume["configMap"]["name"]))
            if "secret" in volume:
                used.add(("Secret", volume["secret"]["secretName"]))
        for container in template["spec"]["containers"]:
            for env in container.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    used.add(("Secret", env["valueFrom"]["secretKeyRef"]["name"]))

    assert used - present == set()


def test_api_probes_liveness_on_healthz_and_readiness_on_readyz() -> None:
    container = only_container(find("Deployment", "simguard-api"))
    http_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "http")

    assert http_port == 8080
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}


def test_worker_probes_its_metrics_port_healthz() -> None:
    container = only_container(find("StatefulSet", "simguard-worker"))
    metrics_port = next(p["containerPort"] for p in container["ports"] if p["name"] == "metrics")

    assert metrics_port == 9464
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}


def test_worker_is_given_longer_than_the_default_grace_period_to_drain() -> None:
    # Kubernetes' default 30 s is less than one blocked transaction commit (30 s)
    # plus the batch in flight.
    worker = find("StatefulSet", "simguard-worker")

    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 60


def test_worker_replicas_do_not_exceed_the_partition_count() -> None:
    settings = tomllib.loads(config_map_files()["simguard.toml"])
    replicas = find("StatefulSet", "simguard-worker")["spec"]["replicas"]

    assert replicas <= settings["topic_partitions"]


@pytest.mark.parametrize(
    ("kind", "workload"), [("Deployment", "simguard-api"), ("StatefulSet", "simguard-worker")]
)
def test_simguard_container_runs_non_root_on_a_read_only_root_filesystem(
    kind: str, workload: str
) -> None:
    deployment = find(kind, workload)
    pod_security = deployment["spec"]["template"]["spec"]["securityContext"]
    container_security = only_container(deployment)["securityContext"]

    assert pod_security["runAsNonRoot"] is True
    assert container_security["readOnlyRootFilesystem"] is True
    assert container_security["allowPrivilegeEscalation"] is False
    assert container_security["capabilities"]["drop"] == ["ALL"]


def test_simguard_pods_run_as_the_image_user() -> None:
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    image_user = re.findall(r"^USER\s+(\d+)", dockerfile, flags=re.MULTILINE)[-1]
    pod_users = {
        template["spec"]["securityContext"]["runAsUser"]
        for template in pod_templates()
        if template["metadata"]["labels"].get("app.kubernetes.io/name") == "simguard"
    }

    assert pod_users == {int(image_user)}


def test_api_prometheus_multiproc_dir_is_a_writable_empty_dir() -> None:
    deployment = find("Deployment", "simguard-api")
    container = only_container(deployment)
    multiproc_dir = next(
        e["value"] for e in container["env"] if e["name"] == "PROMETHEUS_MULTIPROC_DIR"
    )
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == multiproc_dir)
    volume = next(
        v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"]
    )

    assert "emptyDir" in volume
    assert not mount.get("readOnly", False)


def test_configuration_is_accepted_by_simguard(tmp_path: Path) -> None:
    for name, content in config_map_files().items():
        (tmp_path / name).write_text(content)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("-----BEGIN CERTIFICATE-----\n")
    # The files' own paths point into the pod's mount; here they are in tmp_path.
    settings = load_settings(
        environ={
            "SIMGUARD_CONFIG": str(tmp_path / "simguard.toml"),
            "SIMGUARD_RULES_FILE": str(tmp_path / "rules.toml"),
            "SIMGUARD_BORDER_CELLS_CSV": str(tmp_path / "border-cells.csv"),
            # Mounted from secrets in the pod.
            "SIMGUARD_KAFKA_SSL_CAFILE": str(ca_file),
            "SIMGUARD_KAFKA_SASL_PASSWORD": "a-kafka-password-from-the-secret",
        }
    )

    assert settings.topic_replication_factor == 3
    assert settings.rules.border_cells
    assert settings.kafka_security_protocol == "SASL_SSL"


def kafka_server_properties() -> dict[str, str]:
    text = find("ConfigMap", "kafka-config")["data"]["server.properties"]
    pairs = (line.partition("=") for line in text.splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, _, value in pairs}


def test_every_kafka_listener_is_tls_and_acls_are_enforced() -> None:
    properties = kafka_server_properties()
    protocols = dict(
        entry.split(":") for entry in properties["listener.security.protocol.map"].split(",")
    )
    listeners = [entry.split("://")[0] for entry in properties["listeners"].split(",")]

    assert {protocols[name] for name in listeners} <= {"SSL", "SASL_SSL"}
    assert properties["listener.name.controller.ssl.client.auth"] == "required"
    assert properties["authorizer.class.name"].endswith("StandardAuthorizer")
    assert properties["allow.everyone.if.no.acl.found"] == "false"


def test_the_brokers_advertise_only_their_tls_listeners() -> None:
    command = only_container(find("StatefulSet", "kafka"))["command"][-1]

    assert "advertised.listeners=SASL_SSL://" in command
    assert "PLAINTEXT" not in command
    assert "/var/run/kafka/server.properties" in command


def test_the_topics_job_makes_the_acls_as_the_admin_certificate() -> None:
    job = only_container(find("Job", "simguard-topics"))
    env = {e["name"]: e.get("value") for e in job["env"]}

    assert "topics ensure --acls" in job["command"][-1]
    assert env["SIMGUARD_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert env["SIMGUARD_KAFKA_SSL_CERTFILE"] == "/etc/kafka/pki/admin.pem"


def test_configured_file_paths_point_into_the_mounted_config_map() -> None:
    files = config_map_files()
    paths = [
        tomllib.loads(files["simguard.toml"])["rules_file"],
        tomllib.loads(files["rules.toml"])["border_cells_csv"],
    ]
    for deployment in simguard_deployments():
        mounts = {m["mountPath"] for m in only_container(deployment)["volumeMounts"]}

        assert CONFIG_MOUNT_PATH in mounts
    assert [p for p in paths if p not in {f"{CONFIG_MOUNT_PATH}/{name}" for name in files}] == []


def test_pods_read_the_config_file_from_the_mounted_config_map() -> None:
    for deployment in simguard_deployments():
        env = {e["name"]: e.get("value") for e in only_container(deployment)["env"]}

        assert env["SIMGUARD_CONFIG"] == f"{CONFIG_MOUNT_PATH}/simguard.toml"


def test_kafka_bootstrap_servers_name_every_broker_pod() -> None:
    settings = tomllib.loads(config_map_files()["simguard.toml"])
    brokers = find("StatefulSet", "kafka")
    service = brokers["spec"]["serviceName"]
    expected = [
        f"kafka-{ordinal}.{service}.simguard.svc.cluster.local:9092"
        for ordinal in range(brokers["spec"]["replicas"])
    ]

    assert settings["kafka_bootstrap_servers"].split(",") == expected


def test_secret_holds_only_marked_placeholders() -> None:
    secret = find("Secret", "simguard-secrets")

    assert "data" not in secret
    assert [k for k, v in secret["stringData"].items() if "REPLACE-ME" not in v] == []


def test_secret_has_every_key_the_pods_read() -> None:
    read: set[tuple[str, str]] = set()
    for template in pod_templates():
        for container in template["spec"]["containers"]:
            read |= {
                (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                for e in container.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            }
        for volume in template["spec"].get("volumes", []):
            if "secret" in volume:
                name = volume["secret"]["secretName"]
                read |= {(name, item["key"]) for item in volume["secret"].get("items", [])}
    held = {
        (o["metadata"]["name"], key)
        for o in objects()
        if o["kind"] == "Secret"
        for key in o["stringData"]
    }

    assert read
    assert read - held == set()


def test_prometheus_discovers_pods_through_headless_services() -> None:
    config_file = REPO_ROOT / "deploy" / "prometheus" / "prometheus.kubernetes.yml"
    with config_file.open() as handle:
        jobs = yaml.safe_load(handle)["scrape_configs"]
    unresolved: list[str] = []
    for job in jobs:
        for discovery in job["dns_sd_configs"]:
            for dns_name in discovery["names"]:
                service_name, namespace = dns_name.split(".")[:2]
                service = find("Service", service_name)
                ports = [p["port"] for p in service["spec"]["ports"]]
                headless = service["spec"].get("clusterIP") == "None"
                if namespace != "simguard" or not headless or discovery["port"] not in ports:
                    unresolved.append(f"{job['job_name']}: {dns_name}:{discovery['port']}")

    assert unresolved == []


def test_a_replacement_worker_pod_takes_its_predecessors_name_and_transactional_id() -> None:
    # A StatefulSet's pod N is always simguard-worker-N: the worker is named
    # after its pod, so a replacement fences the old producer at once.
    worker = find("StatefulSet", "simguard-worker")
    container = only_container(worker)
    pod_name = next(e for e in container["env"] if e["name"] == "POD_NAME")

    assert container["args"] == ["worker", "--name", "$(POD_NAME)"]
    assert pod_name["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    headless = find("Service", worker["spec"]["serviceName"])
    assert headless["spec"]["clusterIP"] == "None"
    assert not any(
        o["kind"] == "Deployment" and o["metadata"]["name"] == "simguard-worker" for o in objects()
    )
