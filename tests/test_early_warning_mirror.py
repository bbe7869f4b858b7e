"""Early-warning indicators from a worker on our cluster ("TH") to a partner
regulator's ("KH") through Apache Kafka's MirrorMaker 2: two real clusters,
a real worker and store, and a partner cluster stopped meanwhile."""

from __future__ import annotations

import re
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import factories
import orjson
import pytest
from kafka.admin import NewTopic
from kafka_helpers import MakeSettings, read_all
from prometheus_client.parser import text_string_to_metric_families
from worker_helpers import WorkerProcess, flagged_reasons, produce, wait_for

from simguard.broker import KafkaNode, free_port, start_single_node
from simguard.kafka_clients import admin_client, reliable_producer
from simguard.mirror import Cluster, Flow, MirrorMaker, properties
from simguard.settings import PartnerPolicy, Settings
from simguard.store import foreign_indicators as foreign_rows
from simguard.store import open_store

OPERATOR = "52003"
CAMBODIA = "45606"
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
SHARED = frozenset({"ACTIVATED_THEN_ABROAD", "HIGH_RISK_ROAMING"})


def at(hours: float) -> str:
    return (START + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def mule(seed: int) -> list[tuple[str, dict[str, Any]]]:
    """A SIM registered and activated at home, in Cambodia a day later."""
    ids = {
        "operator": OPERATOR,
        "imsi": factories.imsi(OPERATOR, seed),
        "iccid": factories.iccid(seed),
        "msisdn": factories.msisdn(seed),
    }
    return [
        ("registrations", factories.valid_registration_wire(**ids, registered_at=at(0))),
        ("activations", factories.valid_activation(**ids, activated_at=at(0.1))),
        (
            "network_events",
            factories.valid_network_event(
                operator=OPERATOR, imsi=ids["imsi"], observed_at=at(24), visited_plmn=CAMBODIA
            ),
        ),
    ]


def send(settings: Settings, events: list[tuple[str, dict[str, Any]]]) -> None:
    for kind, event in events:
        produce(settings, settings.topics()[kind], [event])


@pytest.fixture
def partner(tmp_path: Path) -> Iterator[KafkaNode]:
    node = start_single_node(tmp_path / "kh-kafka", port=free_port())
    yield node
    node.stop()


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    base = make_settings()
    rules = base.rules.__class__(
        **{
            **{f: getattr(base.rules, f) for f in base.rules.__dataclass_fields__},
            "partners": {"KH": PartnerPolicy(SHARED, min_risk=30)},
        }
    )
    return make_settings(rules=rules, partner_pseudonym_secret="k" * 40)


@pytest.fixture
def mirror(settings: Settings, partner: KafkaNode, tmp_path: Path) -> Iterator[MirrorMaker]:
    at_partner = settings.replace(kafka_bootstrap_servers=partner.bootstrap)
    admin = admin_client(at_partner)
    try:
        # The partner's own topic, co-partitioned with ours (same count, murmur2 by IMSI).
        admin.create_topics(
            [
                NewTopic(settings.topic_sightings, settings.topic_partitions, 1),
                NewTopic(settings.indicator_topic("TH"), settings.topic_partitions, 1),
            ]
        )
    finally:
        admin.close()
    config = properties(
        [Cluster("TH", settings.kafka_bootstrap_servers), Cluster("KH", partner.bootstrap)],
        [
            Flow("TH", "KH", re.escape(settings.indicator_topic("KH"))),
            Flow(
                "KH",
                "TH",
                f"{re.escape(settings.topic_sightings)}|"
                f"{re.escape(settings.indicator_topic('TH'))}",
            ),
        ],
    )
    maker = MirrorMaker(tmp_path / "mm2", config).start()
    yield maker
    maker.stop()


def on_partner(settings: Settings, partner: KafkaNode, count: int) -> list[dict[str, Any]]:
    """The indicators MirrorMaker 2 has copied to the partner's cluster so far."""
    at_partner = settings.replace(kafka_bootstrap_servers=partner.bootstrap)
    topic = f"TH.{settings.indicator_topic('KH')}"
    admin = admin_client(at_partner)
    try:
        if topic not in admin.list_topics():
            return []
    finally:
        admin.close()
    records = read_all(at_partner, topic, timeout=2, min_count=count)
    return [orjson.loads(record.value) for record in records]


@pytest.mark.timeout(300)
def test_indicators_reach_the_partner_and_a_partner_stopped_meanwhile_gets_them_back(
    settings: Settings, partner: KafkaNode, mirror: MirrorMaker, tmp_path: Path
) -> None:
    worker = WorkerProcess(settings, "th", tmp_path).start()
    try:
        send(settings, mule(1))
        first = wait_for(lambda: on_partner(settings, partner, 1), timeout=120)
        on_ours = read_all(settings, settings.indicator_topic("KH"), timeout=2)
        assert len(first) == 1, (len(on_ours), mirror.log_tail())
        told = first[0]
        assert told["status"] == "flagged"
        assert told["reasons"] == ["ACTIVATED_THEN_ABROAD"]
        assert told["subject_type"] == "pseudonym"
        assert told["subject"] != factories.imsi(OPERATOR, 1)
        assert "holder_ref" not in orjson.dumps(told).decode()

        lag = "simguard_partner_link_lag_seconds"
        assert (wait_for(lambda: metric(worker, lag, partner="KH"), timeout=60) or 99) < 30
        partner.stop()
        send(settings, mule(2))
        assert wait_for(lambda: len(flagged_reasons(settings)) == 2, timeout=60)
        # While the partner's cluster is down its heartbeats stop: the lag grows.
        assert wait_for(lambda: (metric(worker, lag, partner="KH") or 0) > 20, timeout=90)
        partner.start()
        both = wait_for(lambda: len(on_partner(settings, partner, 2)) >= 2 and True, timeout=120)
        assert both, mirror.log_tail()
        subjects = {indicator["subject"] for indicator in on_partner(settings, partner, 2)}
        assert len(subjects) == 2
    finally:
        worker.stop_quietly()


def metric(worker: WorkerProcess, name: str, **labels: str) -> float | None:
    """A sample of the worker's /metrics, None while it has none."""
    with urllib.request.urlopen(f"http://127.0.0.1:{worker.metrics_port}/metrics") as answer:
        exposition = answer.read().decode()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


def sighting(seed: int, days_ago: int, **changes: Any) -> dict[str, Any]:
    """The partner's observation of our SIM `seed` on a Cambodian network, at noon UTC."""
    noon = datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0)
    return {
        "event_id": factories.valid_usage()["event_id"],
        "imsi": factories.imsi(OPERATOR, seed),
        "observed_at": (noon - timedelta(days=days_ago)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "visited_plmn": CAMBODIA,
        **changes,
    }


def sent_by_partner(settings: Settings, partner: KafkaNode, events: list[dict[str, Any]]) -> None:
    producer = reliable_producer(settings.replace(kafka_bootstrap_servers=partner.bootstrap))
    try:
        for event in events:
            producer.send(
                settings.topic_sightings, key=event["imsi"].encode(), value=orjson.dumps(event)
            )
        producer.flush(timeout=30)
    finally:
        producer.close()


@pytest.mark.timeout(300)
def test_partner_sightings_on_three_days_raise_roaming_and_bad_ones_go_to_its_dead_letters(
    settings: Settings, partner: KafkaNode, mirror: MirrorMaker, tmp_path: Path
) -> None:
    worker = WorkerProcess(settings, "th", tmp_path).start()
    try:
        # SIM 3 has been at home for weeks; SIM 4 is seen on two days only.
        registered = factories.valid_registration_wire(
            operator=OPERATOR,
            imsi=factories.imsi(OPERATOR, 3),
            iccid=factories.iccid(3),
            msisdn=factories.msisdn(3),
            registered_at=at(-24 * 20),
        )
        produce(settings, settings.topic_registrations, [registered])
        foreign_sim = sighting(5, 2, imsi="456060000000005")
        thai_network = sighting(3, 2, visited_plmn="52003")
        sent_by_partner(
            settings,
            partner,
            [
                sighting(4, 3),
                sighting(4, 2),
                sighting(3, 3),
                sighting(3, 2),
                foreign_sim,
                thai_network,
                sighting(3, 1),
            ],
        )
        flagged = wait_for(lambda: flagged_reasons(settings), timeout=120)
        assert flagged == {factories.imsi(OPERATOR, 3): {"HIGH_RISK_ROAMING"}}, mirror.log_tail()
        sightings = "simguard_partner_sightings_total"
        applied = wait_for(lambda: metric(worker, sightings, partner="KH", outcome="applied"))
        assert applied == 5
        dead = read_all(settings, settings.partner_dead_letter_topic("KH"), timeout=10, min_count=2)
        assert sorted(orjson.loads(r.value)["error"] for r in dead) == ["not_the_partners"] * 2
        assert read_all(settings, settings.topic_dead_letter, timeout=1) == []
    finally:
        worker.stop_quietly()


def cambodian_indicator(subject: str, home_country: str = "KH") -> dict[str, Any]:
    """What Cambodia's simguard tells us about one of its SIMs flagged there."""
    return {
        "schema_version": 1,
        "subject_type": "imsi",
        "subject": subject,
        "home_country": home_country,
        "status": "flagged",
        "reasons": ["HIGH_RISK_ROAMING"],
        "risk": 30,
        "since": at(1),
        "case_version": 2,
        "updated_at": at(2),
    }


@pytest.mark.timeout(300)
def test_a_partners_indicators_about_its_own_sims_are_kept_and_others_dead_lettered(
    settings: Settings, partner: KafkaNode, mirror: MirrorMaker, tmp_path: Path
) -> None:
    worker = WorkerProcess(settings, "th", tmp_path).start()
    producer = reliable_producer(settings.replace(kafka_bootstrap_servers=partner.bootstrap))
    try:
        for subject, home in (("456060000000007", "KH"), ("515020000000008", "PH")):
            value = orjson.dumps(cambodian_indicator(subject, home))
            producer.send(settings.indicator_topic("TH"), key=subject.encode(), value=value)
        producer.flush(timeout=30)
        store = open_store(settings.database_url)
        try:

            def kept() -> list[dict[str, Any]]:
                with store.reading() as tx:
                    return foreign_rows.flagged(tx, "KH", 10)

            rows = wait_for(kept, timeout=120)
        finally:
            store.close()
        assert [(row["subject"], row["reasons"], row["case_version"]) for row in rows] == [
            ("456060000000007", "HIGH_RISK_ROAMING", 2)
        ], mirror.log_tail()
        dead = read_all(settings, settings.partner_dead_letter_topic("KH"), timeout=10, min_count=1)
        assert [orjson.loads(r.value)["error"] for r in dead] == ["not_the_partners"]
    finally:
        producer.close()
        worker.stop_quietly()
