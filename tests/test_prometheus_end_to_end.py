"""A real Prometheus scrapes a running `simguard api` and `simguard worker`
while events are posted over HTTP, and sees what an operations team relies on:
both targets up, accepted events counted, UNREGISTERED flags raised, consumer
lag back to zero, and deploy/prometheus/alerts.yml loaded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import pytest
import yaml
from factories import (
    OPERATOR,
    iccid,
    imsi,
    msisdn,
    thai_national_id,
    valid_activation,
    valid_holder,
    valid_network_event,
    valid_registration_request,
)
from prometheus_server import (
    ALERT_RULES,
    API_JOB,
    WAIT_SECONDS,
    WORKER_JOB,
    PrometheusServer,
    Simguard,
    running_simguard,
    scrape_config,
    single_value,
    stack_settings,
)
from worker_helpers import wait_for

from simguard.broker import KafkaNode

pytestmark = pytest.mark.prometheus

# Short, so that UNREGISTERED flags are raised within a few scrapes (900 s in production).
GRACE_SECONDS: Final = 2
# Activations nobody registers: each must raise exactly one UNREGISTERED flag.
UNREGISTERED_SIMS: Final = 4
REGISTRATIONS: Final = 3
NETWORK_EVENTS: Final = 3
POSTED: Final = UNREGISTERED_SIMS + REGISTRATIONS + NETWORK_EVENTS


@dataclass
class Observed:
    """The running stack, and what the module posted to it."""

    simguard: Simguard
    prometheus: PrometheusServer
    posted: int


def _events() -> dict[str, list[dict[str, Any]]]:
    """Distinct SIMs per kind, so no event of one kind changes another's outcome."""
    return {
        "/v1/activations": [
            valid_activation(imsi=imsi(OPERATOR, seed), iccid=iccid(seed), msisdn=msisdn(seed))
            for seed in range(1001, 1001 + UNREGISTERED_SIMS)
        ],
        "/v1/registrations": [
            valid_registration_request(
                imsi=imsi(OPERATOR, seed),
                iccid=iccid(seed),
                msisdn=msisdn(seed),
                holder=valid_holder(id_number=thai_national_id(seed)),
            )
            for seed in range(2001, 2001 + REGISTRATIONS)
        ],
        "/v1/network-events": [
            valid_network_event(imsi=imsi(OPERATOR, seed))
            for seed in range(3001, 3001 + NETWORK_EVENTS)
        ],
    }


@pytest.fixture(scope="module")
def observed(
    kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Observed]:
    directory = tmp_path_factory.mktemp("prometheus-end-to-end")
    settings = stack_settings(kafka_broker, directory)
    settings = settings.replace(
        rules=dataclasses.replace(settings.rules, unregistered_grace_seconds=GRACE_SECONDS)
    )
    with running_simguard(settings, directory, OPERATOR) as simguard:
        config = scrape_config(
            api_target=f"127.0.0.1:{simguard.api.port}",
            worker_target=f"127.0.0.1:{simguard.worker.metrics_port}",
        )
        prometheus = PrometheusServer(directory / "prometheus", config)
        try:
            prometheus.start().wait_ready()
            posted = 0
            for path, events in _events().items():
                response = simguard.api.post(path, {"events": events}, simguard.key)
                assert response.status_code == 202, response.text
                posted += response.json()["accepted"]
            yield Observed(simguard, prometheus, posted)
        finally:
            prometheus.stop()


@pytest.mark.parametrize("job", [API_JOB, WORKER_JOB])
def test_prometheus_scrapes_the_target_of_each_job(observed: Observed, job: str) -> None:
    up = observed.prometheus.wait_for_query(
        f'up{{job="{job}"}}', lambda samples: single_value(samples) == 1
    )

    targets = observed.prometheus.api("targets", state="active")["activeTargets"]
    errors = {t["scrapeUrl"]: t["lastError"] for t in targets if t["labels"]["job"] == job}
    assert single_value(up) == 1, f"up{{job={job!r}}}: {up}; scrape errors: {errors}"


def test_accepted_events_reach_the_number_posted(observed: Observed) -> None:
    expression = f'sum(simguard_events_accepted_total{{job="{API_JOB}"}})'

    accepted = observed.prometheus.wait_for_query(
        expression, lambda samples: single_value(samples) == POSTED
    )

    assert observed.posted == POSTED
    assert single_value(accepted) == POSTED, f"{expression}: {accepted}"


def test_unregistered_activations_are_counted_as_flags(observed: Observed) -> None:
    expression = f'sum(simguard_flags_total{{job="{WORKER_JOB}", reason="UNREGISTERED"}})'

    flags = observed.prometheus.wait_for_query(
        expression, lambda samples: single_value(samples) == UNREGISTERED_SIMS
    )

    assert single_value(flags) == UNREGISTERED_SIMS, (
        f"{expression}: {flags}\n{observed.simguard.worker.log_text()[-2000:]}"
    )


def test_consumer_lag_returns_to_zero_once_the_worker_has_caught_up(observed: Observed) -> None:
    # Lag is only worth reading once the worker has handled what was posted.
    handled = f'sum(simguard_worker_events_total{{job="{WORKER_JOB}"}})'
    records = observed.prometheus.wait_for_query(
        handled, lambda samples: (single_value(samples) or 0) >= POSTED
    )
    assert (single_value(records) or 0) >= POSTED, f"{handled}: {records}"
    settings = observed.simguard.settings
    # Every partition of every input topic the worker owns reports its lag.
    partitions = len(settings.input_topics()) * settings.topic_partitions
    reported = f'count(simguard_consumer_lag{{job="{WORKER_JOB}"}})'
    total = f'sum(simguard_consumer_lag{{job="{WORKER_JOB}"}})'

    count = observed.prometheus.wait_for_query(
        reported, lambda samples: single_value(samples) == partitions
    )
    lag = observed.prometheus.wait_for_query(total, lambda samples: single_value(samples) == 0)

    assert single_value(count) == partitions, f"{reported}: {count}"
    lags = observed.prometheus.query(f'simguard_consumer_lag{{job="{WORKER_JOB}"}} > 0')
    assert single_value(lag) == 0, f"{total}: {lag}; partitions behind: {lags}"


def test_the_alert_rules_load_in_the_server_and_evaluate_without_error(
    observed: Observed,
) -> None:
    groups = yaml.safe_load(ALERT_RULES.read_text())["groups"]
    expected = {rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule}

    def loaded_rules() -> list[dict[str, Any]]:
        loaded = observed.prometheus.api("rules", type="alert")["groups"]
        assert {group["file"] for group in loaded} == {str(ALERT_RULES)}
        return [rule for group in loaded for rule in group["rules"]]

    # "unknown" until a rule's first evaluation, one evaluation interval (1 s) in.
    wait_for(lambda: all(rule["health"] == "ok" for rule in loaded_rules()), timeout=WAIT_SECONDS)
    rules = loaded_rules()

    assert {rule["name"] for rule in rules} == expected
    assert {rule["name"]: rule["health"] for rule in rules} == dict.fromkeys(expected, "ok"), [
        (rule["name"], rule.get("lastError")) for rule in rules
    ]
