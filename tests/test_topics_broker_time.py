"""Input topics carry the broker's time: simguard creates them with
message.timestamp.type=LogAppendTime, sets it on input topics made without
it, and a worker refuses to start on topics that keep producers' times."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka.admin import NewTopic
from kafka_helpers import MakeSettings, read_all
from worker_helpers import WorkerProcess

from simguard.kafka_clients import admin_client, ensure_topics, topics_on_producer_time
from simguard.settings import Settings


def create_on_producer_time(settings: Settings) -> None:
    """The input topics as a hand-made `kafka-topics --create` leaves them."""
    admin = admin_client(settings)
    try:
        admin.create_topics(
            [NewTopic(name, settings.topic_partitions, 1) for name in settings.input_topics()]
        )
    finally:
        admin.close()


def fresh(make_settings: MakeSettings) -> Settings:
    # make_settings creates the topics; these names are not yet taken.
    settings = make_settings()
    suffix = "-by-hand"
    return settings.replace(
        topic_activations=settings.topic_activations + suffix,
        topic_registrations=settings.topic_registrations + suffix,
        topic_network_events=settings.topic_network_events + suffix,
        topic_usage=settings.topic_usage + suffix,
        topic_rechecks=settings.topic_rechecks + suffix,
        topic_decisions=settings.topic_decisions + suffix,
    )


def test_ensured_input_topics_keep_the_brokers_time(make_settings: MakeSettings) -> None:
    assert topics_on_producer_time(make_settings()) == []


def test_topics_made_by_hand_are_found_and_ensure_sets_the_brokers_time(
    make_settings: MakeSettings,
) -> None:
    settings = fresh(make_settings)
    create_on_producer_time(settings)
    assert sorted(topics_on_producer_time(settings)) == sorted(settings.input_topics())
    ensure_topics(settings)
    assert topics_on_producer_time(settings) == []


@pytest.mark.timeout(120)
def test_a_worker_refuses_to_start_on_topics_keeping_producers_times(
    make_settings: MakeSettings, tmp_path: Path
) -> None:
    settings = fresh(make_settings)
    create_on_producer_time(settings)
    worker = WorkerProcess(settings, "w1", tmp_path).start()
    try:
        assert worker.wait(timeout=60) != 0
        assert "message.timestamp.type=LogAppendTime" in worker.log_text()
    finally:
        worker.stop_quietly()
    assert read_all(settings, settings.topic_flagged, timeout=1) == []
