"""Every PromQL expression in deploy/ (alert rules, Grafana panels) asks only
for metrics and labels that simguard exports, as DESIGN.md's "Metrics" lists
them. A renamed metric or a misspelt label makes a query silently empty; these
tests make it loud instead."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import service.api_metrics
import workers.worker_metrics

DEPLOY_DIR = Path(__file__).resolve().parents[1] / "deploy"
ALERTS = DEPLOY_DIR / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY_DIR / "grafana" / "simguard-dashboard.json"


@dataclass(frozen=True)
class MetricContract:
    name: str
    type: str
    labels: frozenset[str]


def _contract(name: str, metric_type: str, *labels: str) -> MetricContract:
    return MetricContract(name, metric_type, frozenset(labels))


# DESIGN.md "Metrics" and the README's additions, with each metric's type.
CONTRACT = (
    _contract("simguard_http_requests_total", "counter", "route", "method", "status"),
    _contract("simguard_http_request_duration_seconds", "histogram", "route"),
    _contract("simguard_events_accepted_total", "counter", "kind", "operator"),
    _contract("simguard_events_rejected_total", "counter", "kind", "reason"),
    _contract("simguard_worker_events_total", "counter", "worker", "topic", "outcome"),
    _contract("simguard_worker_batch_duration_seconds", "histogram", "worker"),
    _contract("simguard_consumer_lag", "gauge", "group", "topic", "partition"),
    _contract("simguard_event_to_flag_seconds", "histogram"),
    _contract("simguard_flags_total", "counter", "reason"),
    _contract("simguard_flags_cleared_total", "counter", "reason"),
    _contract("simguard_cases_flagged", "gauge"),
    _contract("simguard_pending_activations", "gauge"),
    _contract("simguard_dead_letters_total", "counter", "topic", "error"),
    # README, "Contract additions".
    _contract("simguard_case_decisions_total", "counter", "action", "outcome"),
    _contract("simguard_notices_pending", "gauge", "operator", "status"),
    _contract("simguard_notice_time_to_action_seconds", "histogram", "operator"),
    _contract("simguard_partner_indicators_total", "counter", "partner", "status"),
    _contract("simguard_partner_sightings_total", "counter", "partner", "outcome"),
    _contract("simguard_partner_link_lag_seconds", "gauge", "partner"),
)
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = frozenset({"job", "instance"})
# Grafana's interval variables, replaced by a plain duration before parsing.
GRAFANA_INTERVALS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def series_labels() -> dict[str, frozenset[str]]:
    """Each series name a query may select, with the labels it carries."""
    series: dict[str, frozenset[str]] = {"up": TARGET_LABELS}
    for metric in CONTRACT:
        labels = metric.labels | TARGET_LABELS
        if metric.type == "histogram":
            series[f"{metric.name}_bucket"] = labels | {"le"}
            series[f"{metric.name}_sum"] = labels
            series[f"{metric.name}_count"] = labels
        else:
            series[metric.name] = labels
    return series


def alert_expressions() -> dict[str, str]:
    with ALERTS.open() as handle:
        groups = yaml.safe_load(handle)["groups"]
    return {
        f"alert {rule['alert']}": rule["expr"]
        for group in groups
        for rule in group["rules"]
        if "alert" in rule
    }


def dashboard_expressions() -> dict[str, str]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    expressions: dict[str, str] = {}
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, duration in GRAFANA_INTERVALS.items():
                expr = expr.replace(variable, duration)
            expressions[f"panel {panel['title']!r} {target['refId']}"] = expr
    return expressions


EXPRESSIONS = {**alert_expressions(), **dashboard_expressions()}


def selectors(expr: promql_parser.Expr) -> list[promql_parser.VectorSelector]:
    found: list[promql_parser.VectorSelector] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return found


def aggregations(expr: promql_parser.Expr) -> list[promql_parser.AggregateExpr]:
    found: list[promql_parser.AggregateExpr] = []

    def visit(node: promql_parser.Expr) -> bool:
        if isinstance(node, promql_parser.AggregateExpr):
            found.append(node)
        return True

    promql_parser.walk(expr, visit)
    return found


@pytest.mark.parametrize("where", EXPRESSIONS)
def test_expression_is_valid_promql(where: str) -> None:
    expr = EXPRESSIONS[where]

    assert "$" not in expr, f"{where}: unknown Grafana variable in {expr!r}"
    promql_parser.parse(expr)


@pytest.mark.parametrize("where", EXPRESSIONS)
def test_expression_selects_only_exported_metrics(where: str) -> None:
    known = series_labels()
    names = [selector.name for selector in selectors(promql_parser.parse(EXPRESSIONS[where]))]

    assert names, f"{where}: selects no metric"
    assert [name for name in names if name not in known] == []


@pytest.mark.parametrize("where", EXPRESSIONS)
def test_expression_matches_only_labels_its_metrics_carry(where: str) -> None:
    known = series_labels()
    wrong = [
        f"{selector.name}{{{matcher.name}}}"
        for selector in selectors(promql_parser.parse(EXPRESSIONS[where]))
        for matcher in selector.matchers.matchers
        if matcher.name not in known.get(selector.name or "", frozenset())
    ]

    assert wrong == []


@pytest.mark.parametrize("where", EXPRESSIONS)
def test_expression_groups_only_by_labels_its_metrics_carry(where: str) -> None:
    known = series_labels()
    wrong: list[str] = []
    for aggregation in aggregations(promql_parser.parse(EXPRESSIONS[where])):
        if aggregation.modifier is None:
            continue
        available = frozenset().union(
            *(known.get(s.name or "", frozenset()) for s in selectors(aggregation.expr))
        )
        wrong += [label for label in aggregation.modifier.labels if label not in available]

    assert wrong == []


def test_every_contract_metric_is_on_the_dashboard() -> None:
    dashboard_text = " ".join(dashboard_expressions().values())
    missing = [
        metric.name for metric in CONTRACT if not re.search(rf"\b{metric.name}", dashboard_text)
    ]

    assert missing == []


def test_simguard_exports_the_contract_metrics() -> None:
    exported: dict[str, MetricContract] = {}
    defined = [*vars(service.api_metrics).values(), *vars(workers.worker_metrics).values()]
    for value in defined:
        if isinstance(value, MetricWrapperBase):
            (family,) = value.describe()
            # prometheus_client names a counter's family without `_total`.
            name = f"{family.name}_total" if family.type == "counter" else family.name
            # Label names have no public accessor; `_labelnames` is what
            # prometheus_client validates `.labels()` calls against.
            exported[name] = MetricContract(name, family.type, frozenset(value._labelnames))

    assert {m.name: m for m in CONTRACT if exported.get(m.name) != m} == {}
