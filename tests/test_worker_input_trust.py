"""What a worker accepts from its input topics, where operators may produce
straight to Kafka: each record is decoded as the loop decodes a batch (pure,
no store), so every refusal is seen with its dead-letter reason."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import factories
import orjson
import pytest

from schemas import attestation, operator_signature
from simguard.partitioning import partition_for_key
from simguard.settings import Settings
from workers.processor import BatchProcessor
from workers.records import LOG_APPEND_TIME, DecodedEvent, DecodedRecheck, RecordInMemory, Refused

PARTITIONS = 3
SETTINGS = Settings(
    hmac_secret="holder-pseudonymisation-secret",
    attestation_secret="api-validation-attestation-secret",
    operator_signing_secret="operator-record-signing-secret",
    topic_partitions=PARTITIONS,
)
AIS, DTAC = "52003", "52018"
CREATE_TIME = 0
NOW = datetime(2026, 11, 2, 3, 5, tzinfo=UTC)


def activation(
    operator: str = AIS, imsi_operator: str | None = None, **overrides: Any
) -> dict[str, Any]:
    return factories.valid_activation(
        operator=operator, imsi=factories.imsi(imsi_operator or operator, 7), **overrides
    )


def record(
    event: dict[str, Any],
    *,
    signed_by: str | None = None,
    topic: str = SETTINGS.topic_activations,
    partition: int | None = None,
    headers: list[tuple[str, bytes]] | None = None,
    appended: datetime = NOW,
    timestamp_type: int = LOG_APPEND_TIME,
) -> RecordInMemory:
    key, value = str(event["imsi"]).encode(), orjson.dumps(event)
    all_headers = list(headers or [])
    if signed_by is not None:
        signature = operator_signature.sign_for(
            SETTINGS.operator_signing_secret, signed_by, key, value
        )
        all_headers.append((operator_signature.HEADER, signature))
    return RecordInMemory(
        topic=topic,
        partition=partition_for_key(key, PARTITIONS) if partition is None else partition,
        offset=0,
        key=key,
        value=value,
        timestamp=int(appended.timestamp() * 1000),
        timestamp_type=timestamp_type,
        headers=all_headers,
    )


def refusal(rec: RecordInMemory) -> str | None:
    (decoded,) = BatchProcessor(SETTINGS).decode([rec], NOW)
    if isinstance(decoded, Refused):
        return decoded.poison.error
    assert isinstance(decoded, DecodedEvent | DecodedRecheck)
    return None


def test_a_direct_record_signed_by_the_operator_it_names_is_accepted() -> None:
    assert refusal(record(activation(), signed_by=AIS)) is None


def test_an_unsigned_direct_record_is_refused_as_unsigned() -> None:
    assert refusal(record(activation())) == "unsigned_record"


def test_a_record_naming_another_operator_than_its_signer_is_refused() -> None:
    assert refusal(record(activation(operator=DTAC), signed_by=AIS)) == "bad_operator_signature"


def test_an_operator_signing_an_event_for_another_operators_imsi_is_refused() -> None:
    # Naming itself as the operator of another operator's IMSI: the schema's
    # own check that the IMSI is the operator's refuses it.
    event = activation(operator=AIS, imsi_operator=DTAC)
    assert refusal(record(event, signed_by=AIS)) == "invalid_event"


def test_a_signature_over_other_bytes_does_not_verify() -> None:
    signed = record(activation(), signed_by=AIS)
    tampered = dataclasses.replace(signed, value=orjson.dumps(activation(channel="kiosk")))
    assert refusal(tampered) == "bad_operator_signature"


def test_an_attestation_made_with_the_pseudonymisation_secret_is_not_taken_as_validated() -> None:
    event = activation(iccid="1234")
    forged = attestation.sign(SETTINGS.hmac_secret, orjson.dumps(event))
    assert refusal(record(event, headers=[(attestation.HEADER, forged)])) == "unsigned_record"


def test_an_attestation_made_with_the_attestation_secret_is_taken_as_validated() -> None:
    event = activation()
    signed = attestation.sign(SETTINGS.attestation_secret, orjson.dumps(event))
    assert refusal(record(event, headers=[(attestation.HEADER, signed)])) is None


def test_a_record_off_the_partition_its_imsi_maps_to_is_refused() -> None:
    on_its_partition = record(activation(), signed_by=AIS)
    elsewhere = (on_its_partition.partition + 1) % PARTITIONS
    assert refusal(dataclasses.replace(on_its_partition, partition=elsewhere)) == "wrong_partition"


def test_a_record_without_a_key_is_refused_as_on_the_wrong_partition() -> None:
    keyless = dataclasses.replace(record(activation(), signed_by=AIS), key=None)
    assert refusal(keyless) == "wrong_partition"


def test_partitions_are_counted_as_the_broker_has_them() -> None:
    # A SIM whose partition differs between 3 and 12 partitions.
    seed = next(
        n
        for n in range(100)
        if partition_for_key(factories.imsi(AIS, n).encode(), 12)
        != partition_for_key(factories.imsi(AIS, n).encode(), PARTITIONS)
    )
    event = factories.valid_activation(operator=AIS, imsi=factories.imsi(AIS, seed))
    on_twelve = record(
        event, signed_by=AIS, partition=partition_for_key(event["imsi"].encode(), 12)
    )
    processor = BatchProcessor(SETTINGS)
    processor.partition_counts = {SETTINGS.topic_activations: 12}
    (decoded,) = processor.decode([on_twelve], NOW)
    assert isinstance(decoded, DecodedEvent)
    assert refusal(on_twelve) == "wrong_partition"


@pytest.mark.parametrize(
    ("payload", "key"),
    [
        ({"imsi": "not-an-imsi-at-all", "check": "holder"}, "not-an-imsi-at-all"),
        ({"imsi": factories.imsi(AIS, 7), "check": "everything"}, factories.imsi(AIS, 7)),
        ({"imsi": factories.imsi(AIS, 7), "check": "holder", "extra": 1}, factories.imsi(AIS, 7)),
        ({"check": "holder"}, factories.imsi(AIS, 7)),
        ({"imsi": factories.imsi(AIS, 7), "check": "holder"}, factories.imsi(AIS, 8)),
    ],
    ids=["not-an-imsi", "unknown-check", "unknown-field", "no-imsi", "key-is-another-imsi"],
)
def test_a_malformed_recheck_is_refused(payload: dict[str, Any], key: str) -> None:
    rec = RecordInMemory(
        topic=SETTINGS.topic_rechecks,
        partition=partition_for_key(key.encode(), PARTITIONS),
        offset=0,
        key=key.encode(),
        value=orjson.dumps(payload),
        timestamp=int(NOW.timestamp() * 1000),
        timestamp_type=LOG_APPEND_TIME,
        headers=[],
    )
    assert refusal(rec) == "invalid_recheck"


def test_a_well_formed_recheck_is_accepted() -> None:
    imsi = factories.imsi(AIS, 7)
    rec = RecordInMemory(
        topic=SETTINGS.topic_rechecks,
        partition=partition_for_key(imsi.encode(), PARTITIONS),
        offset=0,
        key=imsi.encode(),
        value=orjson.dumps({"imsi": imsi, "check": "holder", "at": "2026-11-02T03:00:00Z"}),
        timestamp=int(NOW.timestamp() * 1000),
        timestamp_type=LOG_APPEND_TIME,
        headers=[],
    )
    assert refusal(rec) is None


def test_the_future_is_judged_from_the_brokers_append_time_not_the_workers_clock() -> None:
    # Appended a day ago and read now: an event 30 minutes past its append
    # time was in the future when it was sent, however late it is read.
    appended = NOW - timedelta(days=1)
    event = activation(
        activated_at=(appended + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    )
    assert refusal(record(event, signed_by=AIS, appended=appended)) == "invalid_event"


def test_a_producers_own_timestamp_is_not_taken_as_the_arrival() -> None:
    claimed = NOW - timedelta(days=30)
    rec = record(activation(), signed_by=AIS, appended=claimed, timestamp_type=CREATE_TIME)
    (decoded,) = BatchProcessor(SETTINGS).decode([rec], NOW)
    assert isinstance(decoded, DecodedEvent)
    assert decoded.arrival.received_text == "2026-11-02T03:05:00.000000Z"
