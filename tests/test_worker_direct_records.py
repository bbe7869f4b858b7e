"""Records produced straight to Kafka, through a real broker to a real worker:
what no operator signed, what sits on the wrong partition and a forged
recheck are dead-lettered and change nothing; a signed record is applied."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import factories
import orjson
import pytest
from kafka_helpers import MakeSettings, read_all
from worker_helpers import WorkerProcess, flagged_reasons, wait_for

from schemas import operator_signature
from simguard.kafka_clients import reliable_producer
from simguard.partitioning import partition_for_key
from simguard.settings import Settings

AIS, DTAC = "52003", "52018"


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    base = make_settings()
    return base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=2))


@pytest.fixture
def worker(settings: Settings, tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess(settings, "w1", tmp_path).start()
    yield process
    process.stop_quietly()


def activation(operator: str, seed: int) -> dict[str, object]:
    return factories.valid_activation(
        operator=operator,
        imsi=factories.imsi(operator, seed),
        iccid=factories.iccid(seed),
        msisdn=factories.msisdn(seed),
    )


Outgoing = tuple[bytes, bytes, list[tuple[str, bytes]], int | None]


def send(settings: Settings, topic: str, records: list[Outgoing]) -> None:
    producer = reliable_producer(settings)
    try:
        for key, value, headers, partition in records:
            producer.send(topic, key=key, value=value, headers=headers, partition=partition)
        producer.flush(timeout=30)
    finally:
        producer.close()


def sims_rows(settings: Settings) -> set[str]:
    path = settings.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        return {imsi for (imsi,) in connection.execute("SELECT imsi FROM sims")}


def test_hostile_direct_records_are_dead_lettered_and_only_the_signed_one_is_applied(
    settings: Settings, worker: WorkerProcess
) -> None:
    partitions = settings.topic_partitions
    signed = activation(AIS, 1)
    unsigned = activation(AIS, 2)
    # AIS signing an activation that names DTAC and one of DTAC's SIMs.
    for_dtac = activation(DTAC, 3)
    misplaced = activation(AIS, 4)

    def encoded(event: dict[str, object]) -> tuple[bytes, bytes]:
        return str(event["imsi"]).encode(), orjson.dumps(event)

    def sign(signer: str, key: bytes, value: bytes) -> bytes:
        return operator_signature.sign_for(settings.operator_signing_secret, signer, key, value)

    records: list[Outgoing] = []
    for event, signer, off_partition in [
        (signed, AIS, False),
        (unsigned, None, False),
        (for_dtac, AIS, False),
        (misplaced, AIS, True),
    ]:
        key, value = encoded(event)
        headers = [] if signer is None else [(operator_signature.HEADER, sign(signer, key, value))]
        partition = (partition_for_key(key, partitions) + 1) % partitions if off_partition else None
        records.append((key, value, headers, partition))
    send(settings, settings.topic_activations, records)
    forged_key = b"not-an-imsi-at-all"
    forged = orjson.dumps({"imsi": "not-an-imsi-at-all", "check": "holder"})
    send(settings, settings.topic_rechecks, [(forged_key, forged, [], None)])

    dead = wait_for(
        lambda: read_all(settings, settings.topic_dead_letter, timeout=1, min_count=4), timeout=60
    )
    errors = {record.key: orjson.loads(record.value)["error"] for record in dead}
    assert errors == {
        unsigned["imsi"]: "unsigned_record",
        for_dtac["imsi"]: "bad_operator_signature",
        misplaced["imsi"]: "wrong_partition",
        "not-an-imsi-at-all": "invalid_recheck",
    }
    assert wait_for(lambda: flagged_reasons(settings), timeout=60) == {
        signed["imsi"]: {"UNREGISTERED"}
    }
    assert sims_rows(settings) == {signed["imsi"]}
