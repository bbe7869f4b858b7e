"""The Grafana dashboard and its provisioning in deploy/grafana/ load, show the
panels ops teams look for, and find their data source. (What the panels' PromQL
asks for is checked in test_deploy_metrics.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

GRAFANA_DIR = Path(__file__).resolve().parents[1] / "deploy" / "grafana"
DASHBOARD = GRAFANA_DIR / "simguard-dashboard.json"
DATASOURCES = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yaml"
DASHBOARD_PROVIDERS = GRAFANA_DIR / "provisioning" / "dashboards" / "simguard.yaml"
# The dashboard model the JSON is written in (Grafana 10.4 and 11); newer
# Grafana migrates it on load, so a bump here is a deliberate rewrite.
SCHEMA_VERSION = 39
EXPECTED_PANELS = (
    "Events accepted per second by kind",
    "Events rejected per second by reason",
    "HTTP p99 latency by route",
    "HTTP responses by status",
    "Consumer lag per partition",
    "Event to flag latency (p50, p99)",
    "Flags raised and cleared per minute by reason",
    "Open cases",
    "Pending activations",
    "Dead letters per minute",
    "Operator notices open and overdue by operator",
    "Notice time to action (p50, p90) by operator",
    "Regulators' decisions per hour by action and outcome",
)


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def query_panels() -> list[dict[str, Any]]:
    return [panel for panel in load_dashboard()["panels"] if panel["type"] != "row"]


def load_yaml(path: Path) -> Any:
    with path.open() as handle:
        return yaml.safe_load(handle)


def test_dashboard_has_the_supported_schema_version() -> None:
    assert load_dashboard()["schemaVersion"] == SCHEMA_VERSION


def test_dashboard_has_a_stable_uid_for_links() -> None:
    assert load_dashboard()["uid"] == "simguard-overview"


@pytest.mark.parametrize("title", EXPECTED_PANELS)
def test_dashboard_has_panel(title: str) -> None:
    titles = [panel["title"] for panel in query_panels()]

    assert title in titles


def test_every_panel_queries_something() -> None:
    empty = [panel["title"] for panel in query_panels() if not panel.get("targets")]

    assert empty == []


def test_panel_ids_are_unique() -> None:
    ids = [panel["id"] for panel in load_dashboard()["panels"]]

    assert len(ids) == len(set(ids))


def test_panels_do_not_overlap() -> None:
    occupied: dict[tuple[int, int], str] = {}
    overlaps: list[str] = []
    for panel in load_dashboard()["panels"]:
        grid = panel["gridPos"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in occupied:
                    overlaps.append(f"{panel['title']} / {occupied[(x, y)]}")
                occupied[(x, y)] = panel["title"]

    assert sorted(set(overlaps)) == []


def test_every_query_uses_the_datasource_variable() -> None:
    datasources = {
        target["datasource"]["uid"] for panel in query_panels() for target in panel["targets"]
    }

    assert datasources == {"${datasource}"}


def test_datasource_variable_defaults_to_the_provisioned_prometheus() -> None:
    variable = next(v for v in load_dashboard()["templating"]["list"] if v["name"] == "datasource")
    provisioned = load_yaml(DATASOURCES)["datasources"]

    assert variable["type"] == "datasource"
    assert variable["query"] == "prometheus"
    assert variable["current"]["value"] in {
        d["uid"] for d in provisioned if d["type"] == "prometheus"
    }


def test_provisioned_datasource_interval_matches_the_scrape_interval() -> None:
    prometheus_config = load_yaml(GRAFANA_DIR.parent / "prometheus" / "prometheus.yml")
    datasource = load_yaml(DATASOURCES)["datasources"][0]

    assert datasource["jsonData"]["timeInterval"] == prometheus_config["global"]["scrape_interval"]


def test_dashboard_provider_loads_from_a_file_path() -> None:
    providers = load_yaml(DASHBOARD_PROVIDERS)["providers"]

    assert [(p["type"], p["options"]["path"]) for p in providers] == [
        ("file", "/var/lib/grafana/dashboards/simguard")
    ]
