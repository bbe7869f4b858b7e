"""The Prometheus configuration and alert rules in deploy/prometheus/ are valid
for promtool, and every alert is unit-tested both ways.

promtool comes from Debian's `prometheus` package, which `make test` installs:
without it these tests fail rather than skip, so a machine that cannot check
the rules never reports them as checked."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

PROMETHEUS_DIR = Path(__file__).resolve().parents[1] / "deploy" / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
# One per way of running simguard: this machine, compose, Kubernetes.
SCRAPE_CONFIGS = ("prometheus.yml", "prometheus.compose.yml", "prometheus.kubernetes.yml")
SCRAPE_JOBS = {"simguard-api", "simguard-worker"}
REQUIRED_ANNOTATIONS = {"summary", "description", "runbook"}
SEVERITIES = {"critical", "warning"}


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package (make test does)")
    return path


def run_promtool(promtool: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def alert_rules() -> list[dict[str, Any]]:
    groups = load_yaml(ALERTS)["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_names() -> list[str]:
    return [rule["alert"] for rule in alert_rules()]


def alert_test_cases() -> list[dict[str, Any]]:
    """Every `alert_rule_test` entry of alerts_test.yml."""
    return [case for test in load_yaml(ALERTS_TEST)["tests"] for case in test["alert_rule_test"]]


@pytest.mark.parametrize("config_name", SCRAPE_CONFIGS)
def test_scrape_config_passes_promtool_check_config(promtool: str, config_name: str) -> None:
    result = run_promtool(promtool, "check", "config", config_name)

    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config_name", SCRAPE_CONFIGS)
def test_scrape_config_scrapes_the_api_and_worker_jobs(config_name: str) -> None:
    config = load_yaml(PROMETHEUS_DIR / config_name)

    assert {job["job_name"] for job in config["scrape_configs"]} == SCRAPE_JOBS


@pytest.mark.parametrize("config_name", SCRAPE_CONFIGS)
def test_scrape_config_loads_the_alert_rules(config_name: str) -> None:
    config = load_yaml(PROMETHEUS_DIR / config_name)

    assert config["rule_files"] == [ALERTS.name]


def test_local_scrape_config_targets_the_default_ports_on_loopback() -> None:
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    targets = {
        job["job_name"]: [t for static in job["static_configs"] for t in static["targets"]]
        for job in config["scrape_configs"]
    }

    assert targets == {
        "simguard-api": ["127.0.0.1:8080"],
        "simguard-worker": ["127.0.0.1:9464"],
    }


def test_alert_rules_pass_promtool_check_rules(promtool: str) -> None:
    result = run_promtool(promtool, "check", "rules", ALERTS.name)

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_pass(promtool: str) -> None:
    result = run_promtool(promtool, "test", "rules", ALERTS_TEST.name)

    assert result.returncode == 0, result.stdout + result.stderr


def test_alert_rule_unit_tests_load_the_alert_rules() -> None:
    assert load_yaml(ALERTS_TEST)["rule_files"] == [ALERTS.name]


@pytest.mark.parametrize("alert_name", alert_names())
def test_alert_has_a_unit_test_where_it_fires(alert_name: str) -> None:
    firing = [
        case
        for case in alert_test_cases()
        if case["alertname"] == alert_name and case.get("exp_alerts")
    ]

    assert firing, f"no test case in {ALERTS_TEST.name} expects {alert_name} to fire"


@pytest.mark.parametrize("alert_name", alert_names())
def test_alert_has_a_unit_test_where_it_stays_silent(alert_name: str) -> None:
    silent = [
        case
        for case in alert_test_cases()
        if case["alertname"] == alert_name and not case.get("exp_alerts")
    ]

    assert silent, f"no test case in {ALERTS_TEST.name} expects {alert_name} not to fire"


@pytest.mark.parametrize("alert_name", alert_names())
def test_alert_has_a_severity_and_explains_itself(alert_name: str) -> None:
    rule = next(rule for rule in alert_rules() if rule["alert"] == alert_name)

    assert rule["labels"]["severity"] in SEVERITIES
    assert set(rule["annotations"]) >= REQUIRED_ANNOTATIONS


def test_alert_names_are_unique() -> None:
    names = alert_names()

    assert len(names) == len(set(names))


def test_the_agreed_alerts_exist() -> None:
    assert set(alert_names()) >= {
        "SimguardApiDown",
        "SimguardApiErrorRate",
        "SimguardConsumerLagGrowing",
        "SimguardDeadLettersAppearing",
        "SimguardNoFlagsWhileEventsArrive",
        "SimguardEventToFlagLatencyHigh",
    }
