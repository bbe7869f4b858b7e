"""Kafka transaction steps with bounded waits.

kafka-python's KafkaProducer waits without limit for AddOffsetsToTxn and
EndTxn. When the transaction coordinator is lost with a majority of the
cluster, that wait was seen never to end even after the brokers came back,
leaving the worker stuck. These helpers drive the same transaction manager
but give up after `timeout_ms`; the caller then replaces the producer, whose
`init_transactions` under the same transactional id fences and aborts
whatever the old one left open.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaTimeoutError


def _bounded(producer: KafkaProducer, result: Any, timeout_ms: int, what: str) -> None:
    producer._sender.wakeup()
    if not result.wait(timeout_ms=timeout_ms):
        raise KafkaTimeoutError(f"{what} not acknowledged within {timeout_ms} ms")


def send_offsets(
    producer: KafkaProducer, offsets: dict[Any, Any], group_metadata: Any, timeout_ms: int
) -> None:
    manager = producer._transaction_manager
    result = manager.send_offsets_to_transaction(offsets, group_metadata)
    _bounded(producer, result, timeout_ms, "the transaction's offsets")


def commit(producer: KafkaProducer, timeout_ms: int) -> None:
    _bounded(producer, producer._transaction_manager.begin_commit(), timeout_ms, "the commit")


def abort(producer: KafkaProducer, timeout_ms: int) -> None:
    _bounded(producer, producer._transaction_manager.begin_abort(), timeout_ms, "the abort")
