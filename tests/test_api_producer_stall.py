"""The API replaces a producer that has acknowledged nothing for three ack
timeouts, on the real broker: the session broker is paused (SIGSTOP), so it
answers nothing, as a node the producer is stuck on would not."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from collections.abc import Iterator

import pytest
from kafka_helpers import MakeSettings

from service.ack_watch import STALL_ACK_TIMEOUTS, AckWatch, stall_seconds
from service.problems import Unavailable
from service.publisher import KafkaPublisher, OutgoingRecord
from simguard.broker import KafkaNode

ACK_TIMEOUT_SECONDS = 0.5
RECORD = OutgoingRecord(key=b"520031234567890", value=b"{}")


def test_a_producer_is_stalled_once_nothing_was_acknowledged_for_its_stall_time() -> None:
    watch = AckWatch(stall_seconds=9.0)
    watch.started(now=100.0)
    assert not watch.stalled(now=108.9)
    assert watch.stalled(now=109.0)


def test_the_third_ack_timeout_in_a_row_passes_the_stall_time_even_when_each_ends_early() -> None:
    watch = AckWatch(stall_seconds(ACK_TIMEOUT_SECONDS))
    watch.started(now=0.0)
    assert not watch.stalled(now=2 * ACK_TIMEOUT_SECONDS)
    assert watch.stalled(now=3 * ACK_TIMEOUT_SECONDS * 0.99)


def test_an_acknowledgement_starts_the_stall_time_again() -> None:
    watch = AckWatch(stall_seconds=9.0)
    watch.started(now=100.0)
    watch.acknowledged(now=105.0)
    assert not watch.stalled(now=113.9)
    assert watch.stalled(now=114.0)


@contextlib.contextmanager
def paused(broker: KafkaNode) -> Iterator[None]:
    assert broker.pid is not None
    os.kill(broker.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(broker.pid, signal.SIGCONT)


def publish(publisher: KafkaPublisher, topic: str) -> None:
    publisher.publish(topic, [RECORD], headers=[], timestamp_ms=1_700_000_000_000)


def test_the_api_replaces_a_producer_that_acknowledged_nothing_for_three_ack_timeouts(
    make_settings: MakeSettings, kafka_broker: KafkaNode, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(api_kafka_ack_timeout_seconds=ACK_TIMEOUT_SECONDS)
    topic = settings.topic_activations
    publisher = KafkaPublisher(settings)
    caplog.set_level(logging.WARNING, logger="simguard.api")
    try:
        publish(publisher, topic)
        with paused(kafka_broker):
            for _ in range(STALL_ACK_TIMEOUTS - 1):
                with pytest.raises(Unavailable):
                    publish(publisher, topic)
            assert "replacing it" not in caplog.text
            with pytest.raises(Unavailable):
                publish(publisher, topic)
            assert "kafka producer acknowledged nothing; replacing it" in caplog.text
        # The replacement bootstraps and serves once the broker answers again.
        publish(publisher, topic)
    finally:
        publisher.close()


def test_the_api_keeps_a_producer_whose_timeouts_are_separated_by_acknowledgements(
    make_settings: MakeSettings, kafka_broker: KafkaNode, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(api_kafka_ack_timeout_seconds=ACK_TIMEOUT_SECONDS)
    topic = settings.topic_activations
    publisher = KafkaPublisher(settings)
    caplog.set_level(logging.WARNING, logger="simguard.api")
    try:
        publish(publisher, topic)
        for _ in range(STALL_ACK_TIMEOUTS + 1):
            with paused(kafka_broker), pytest.raises(Unavailable):
                publish(publisher, topic)
            publish(publisher, topic)
        assert "replacing it" not in caplog.text
    finally:
        publisher.close()
