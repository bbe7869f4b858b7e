"""No raw identity number is kept anywhere simguard writes.

Registrations with Thai national IDs, passports and other documents go in
through the real API (gunicorn) and through `simguard registry import`; a
real worker applies them, is SIGKILLed mid-way and restarted, and raises
IDENTITY_OVER_LIMIT and UNREGISTERED flags. Then everything is scanned for
every ID number, as sent and normalised:

- every record of every topic of the test, as a consumer reads it, and the
  broker's segment files of those topics (which also hold the records of
  transactions that the killed worker left to be aborted);
- every file the API, the worker and the store wrote: the SQLite database and
  its -wal and -shm files (raw bytes, while running and after shutdown), the
  log files, the Prometheus value files.

And a holder_ref cannot be recomputed without the deployment's secret: an
HMAC with another secret, or a plain SHA-256 of the number, is found nowhere.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import hmac
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import pytest
from factories import (
    OPERATOR,
    iccid,
    imsi,
    msisdn,
    thai_national_id,
    valid_activation,
    valid_network_event,
    valid_registration_request,
    valid_registration_wire,
    valid_usage,
)
from kafka_helpers import Record, produce_raw, read_all
from prometheus_server import WAIT_SECONDS, Simguard, running_simguard, stack_settings
from worker_helpers import (
    SIMGUARD,
    WorkerProcess,
    flagged_reasons,
    produce,
    register,
    settings_env,
    wait_for,
)

from registry_import.csv_import import COLUMNS
from schemas import attestation
from schemas.identifiers import normalise_id_number
from schemas.pseudonym import holder_ref
from simguard.api_keys import issue_regulator_key
from simguard.broker import KafkaNode
from simguard.settings import Settings
from simguard.store import open_store

GRACE_SECONDS: Final = 2
WORKER_NAME: Final = "privacy-1"
# Before the API-posted registrations (2026-11-02): the import's 6th SIM of
# a holder is the first over the limit, the API's 7th the second.
IMPORTED_AT: Final = "2026-10-01T00:00:{second:02d}Z"


@dataclass(frozen=True)
class Holder:
    id_type: str
    nationality: str
    # As the operator typed it: spaces, hyphens, lower case are allowed.
    sent: str

    @property
    def normalised(self) -> str:
        return normalise_id_number(self.sent)

    def holder(self) -> dict[str, str]:
        return {"id_type": self.id_type, "id_number": self.sent, "nationality": self.nationality}

    def ref(self, secret: str) -> str:
        return holder_ref(secret, self.id_type, self.nationality, self.sent)

    def forms(self) -> set[str]:
        return {self.sent, self.normalised}


def formatted_thai_id(number: str, separator: str = "-") -> str:
    """As printed on the card: 1-2345-67890-12-1."""
    parts = (number[0], number[1:5], number[5:10], number[10:12], number[12])
    return separator.join(parts)


# Seeds far from the IMSI/ICCID/MSISDN seeds, so that no ID is a substring
# of another identifier by coincidence.
def thai(seed: int, separator: str | None = None) -> Holder:
    number = thai_national_id(73_915_286_40 + seed)
    sent = number if separator is None else formatted_thai_id(number, separator)
    return Holder("national_id", "TH", sent)


# One person, typed three ways on six SIMs: one holder_ref, one over the limit.
SHARED_BY_API: Final = [thai(1), thai(1, "-"), thai(1, " "), thai(1), thai(1, "-"), thai(1)]
# Six SIMs imported (the import sends the sixth's worker a recheck), the
# seventh posted over the API.
SHARED_BY_IMPORT_AND_API: Final = thai(2, "-")
API_ONLY: Final = [
    Holder("passport", "KH", "kh 0482 7751"),
    Holder("passport", "MM", "MB-993-0412"),
    Holder("other", "LA", "wp 5520-1187"),
    thai(3, " "),
]
IMPORT_ONLY: Final = [thai(4), Holder("passport", "VN", "c9 812 3347"), thai(5, "-")]
# Refused by the API (wrong check digit): it must not be kept either.
INVALID: Final = Holder(
    "national_id", "TH", thai(6).sent[:-1] + str((int(thai(6).sent[-1]) + 1) % 10)
)
# Produced straight to Kafka in the API's form (holder.id_number and all), as
# an operator skipping the API might: on the input topic by the operator's
# own doing, and nowhere simguard writes.
SENT_STRAIGHT_TO_KAFKA: Final = thai(7, "-")
EVERY_HOLDER: Final = [
    *SHARED_BY_API,
    SHARED_BY_IMPORT_AND_API,
    *API_ONLY,
    *IMPORT_ONLY,
    INVALID,
]


def registration(seed: int, holder: Holder, registered_at: str) -> dict[str, Any]:
    return valid_registration_request(
        imsi=imsi(OPERATOR, seed),
        iccid=iccid(seed),
        msisdn=msisdn(seed),
        holder=holder.holder(),
        registered_at=registered_at,
    )


def import_row(seed: int, holder: Holder, second: int = 0) -> dict[str, str]:
    return {
        "imsi": imsi(OPERATOR, seed),
        "iccid": iccid(seed),
        "msisdn": msisdn(seed),
        "operator": OPERATOR,
        "id_type": holder.id_type,
        "id_number": holder.sent,
        "nationality": holder.nationality,
        "verification": "in_person",
        "registered_at": IMPORTED_AT.format(second=second),
        "status": "active",
    }


def import_with_cli(settings: Settings, path: Path, rows: list[dict[str, str]]) -> str:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    result = subprocess.run(
        [SIMGUARD, "registry", "import", str(path)],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return result.stdout + result.stderr


@dataclass
class Scan:
    """What was written, and where a needle was found."""

    topics: dict[str, list[Record]]
    # By where they were read: the path, and when.
    files: dict[str, bytes]
    settings: Settings
    holder_refs_on_kafka: set[str]
    holder_refs_in_store: set[str]
    import_output: str
    # The operator's CSV, the one place where the numbers are expected.
    source: bytes

    def found(self, needles: Iterable[str]) -> list[str]:
        return occurrences(needles, self.topics, self.files)


def occurrences(
    needles: Iterable[str], topics: Mapping[str, list[Record]], files: Mapping[str, bytes]
) -> list[str]:
    """Where any of `needles` occurs, as raw UTF-8 bytes."""
    pattern = re.compile(b"|".join(re.escape(needle.encode()) for needle in needles))
    hits = [
        f"topic {topic} partition {record.partition} offset {record.offset}"
        for topic, records in topics.items()
        for record in records
        if any(pattern.search(blob) for blob in _record_bytes(record))
    ]
    hits += [f"file {label}" for label, content in files.items() if pattern.search(content)]
    return hits


def _record_bytes(record: Record) -> list[bytes]:
    key = (record.key or "").encode()
    return [key, record.value, *(value for _, value in record.headers)]


def _files_under(directory: Path, skip: set[Path], when: str) -> dict[str, bytes]:
    return {
        f"{path} ({when})": path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path not in skip
    }


def _segment_files(broker: KafkaNode, settings: Settings) -> dict[str, bytes]:
    """The record data (*.log; the index files hold only offsets) of the
    test's topics, uncompressed as simguard's producers write them."""
    return {
        f"{path} (broker segment)": path.read_bytes()
        for topic in [*settings.topics().values(), settings.notice_topic(OPERATOR)]
        for path in sorted(broker.spec.log_dir.glob(f"{topic}-*/*.log"))
    }


def _holder_refs_in_store(settings: Settings) -> set[str]:
    store = open_store(settings.database_url)
    try:
        with store.reading() as tx:
            rows = tx.fetchall("SELECT holder_ref FROM registrations")
    finally:
        store.close()
    return {row[0] for row in rows}


def _regulator_key(settings: Settings) -> str:
    store = open_store(settings.database_url)
    try:
        return issue_regulator_key(store, "nbtc")[1]
    finally:
        store.close()


def published_by_the_api(records: list[Record]) -> list[Record]:
    """The records the API validated (and marked so), not the operator's own."""
    return [r for r in records if any(name == attestation.HEADER for name, _ in r.headers)]


def _post(simguard: Simguard, path: str, body: Any, expected: int) -> None:
    answer = simguard.api.post(path, body, simguard.key)
    assert answer.status_code == expected, answer.text


@pytest.fixture(scope="module")
def scan(kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scan]:
    directory = tmp_path_factory.mktemp("privacy")
    base = stack_settings(kafka_broker, directory)
    settings = base.replace(
        rules=dataclasses.replace(base.rules, unregistered_grace_seconds=GRACE_SECONDS)
    )
    # The operator's own file: the one place where the numbers are expected.
    source_csv = directory / "operator-registrations.csv"
    rows = [import_row(100 + seed, SHARED_BY_IMPORT_AND_API, seed) for seed in range(6)]
    rows += [import_row(200 + seed, holder) for seed, holder in enumerate(IMPORT_ONLY)]
    import_output = import_with_cli(settings, source_csv, rows)

    shared_api_sims = [
        registration(seed, holder, f"2026-11-02T03:00:{seed:02d}Z")
        for seed, holder in enumerate(SHARED_BY_API, start=1)
    ]
    expected_flags = {
        imsi(OPERATOR, 6): {"IDENTITY_OVER_LIMIT"},
        imsi(OPERATOR, 105): {"IDENTITY_OVER_LIMIT"},
        imsi(OPERATOR, 106): {"IDENTITY_OVER_LIMIT"},
        imsi(OPERATOR, 401): {"UNREGISTERED"},
        imsi(OPERATOR, 402): {"UNREGISTERED"},
    }

    def unregistered(seed: int) -> dict[str, Any]:
        return valid_activation(imsi=imsi(OPERATOR, seed), iccid=iccid(seed), msisdn=msisdn(seed))

    with running_simguard(settings, directory, OPERATOR, worker_name=WORKER_NAME) as simguard:
        _post(simguard, "/v1/registrations", {"events": shared_api_sims}, 202)
        for seed, holder in enumerate(API_ONLY, start=300):
            _post(
                simguard,
                "/v1/registrations",
                registration(seed, holder, "2026-11-02T04:00:00Z"),
                202,
            )
        _post(
            simguard, "/v1/registrations", registration(399, INVALID, "2026-11-02T04:00:00Z"), 422
        )
        _post(simguard, "/v1/activations", unregistered(401), 202)
        observations = [valid_network_event(imsi=imsi(OPERATOR, seed)) for seed in (1, 6, 401)]
        _post(simguard, "/v1/network-events", {"events": observations}, 202)
        usage = [valid_usage(imsi=imsi(OPERATOR, seed)) for seed in (1, 6)]
        _post(simguard, "/v1/usage", {"events": usage}, 202)
        assert wait_for(
            lambda: imsi(OPERATOR, 6) in flagged_reasons(settings), timeout=WAIT_SECONDS
        ), "the worker raised no flag before it was killed"

        simguard.worker.kill()
        seventh = registration(106, SHARED_BY_IMPORT_AND_API, "2026-11-02T05:00:00Z")
        _post(simguard, "/v1/registrations", seventh, 202)
        _post(simguard, "/v1/activations", unregistered(402), 202)
        # Poison straight on Kafka: the dead-letter topic gets a record too.
        poison = valid_registration_wire(imsi=imsi(OPERATOR, 499), msisdn="not-a-number")
        produce(settings, settings.topic_registrations, [poison])
        raw = registration(498, SENT_STRAIGHT_TO_KAFKA, "2026-11-02T05:00:00Z")
        produce(settings, settings.topic_registrations, [raw])
        produce_raw(
            settings,
            settings.topic_registrations,
            imsi(OPERATOR, 497),
            f"national id {SENT_STRAIGHT_TO_KAFKA.sent}".encode(),
        )

        restarted = WorkerProcess(settings, WORKER_NAME, directory).start()
        try:
            restarted.wait_ready()
            assert wait_for(
                lambda: flagged_reasons(settings) == expected_flags, timeout=WAIT_SECONDS
            ), flagged_reasons(settings)
            assert read_all(settings, settings.topic_dead_letter, min_count=3)
            # A regulator's decision, with its free-text reason: the decision
            # and audit topics get a record too.
            confirmed = imsi(OPERATOR, 401)
            version = register(settings)[confirmed]["version"]
            regulator_key = _regulator_key(settings)
            answer = simguard.api.post(
                f"/v1/cases/{confirmed}/decisions",
                {
                    "action": "confirm",
                    "case_version": version,
                    "reason": "Seen by an investigator.",
                },
                regulator_key,
            )
            assert answer.status_code == 202, answer.text
            assert read_all(settings, settings.topic_decisions_audit, min_count=1)
            running_files = _files_under(directory, {source_csv}, "while running")
        finally:
            restarted.terminate()
    # Stopped: the shutdown lines and the checkpointed database as well.
    files = running_files | _files_under(directory, {source_csv}, "after shutdown")
    files |= _segment_files(kafka_broker, settings)
    names = [*settings.topics().values(), settings.notice_topic(OPERATOR)]
    topics = {topic: read_all(settings, topic) for topic in names}
    holder_refs_on_kafka = {
        record.json()["holder_ref"]
        for record in published_by_the_api(topics[settings.topic_registrations])
        if "holder_ref" in record.json()
    }
    yield Scan(
        topics=topics,
        files=files,
        settings=settings,
        holder_refs_on_kafka=holder_refs_on_kafka,
        holder_refs_in_store=_holder_refs_in_store(settings),
        import_output=import_output,
        source=source_csv.read_bytes(),
    )


def test_the_scan_covers_every_topic_the_store_and_the_logs(scan: Scan) -> None:
    names = {Path(label.rpartition(" (")[0]).name for label in scan.files}
    notices = scan.settings.notice_topic(OPERATOR)
    assert set(scan.topics) == {*scan.settings.topics().values(), notices}
    counts = {topic: len(records) for topic, records in sorted(scan.topics.items())}
    assert all(counts.values()), counts
    assert {"simguard.db", "simguard.db-wal", "simguard.db-shm"} <= names
    assert {"api.stdout.log", "api.stderr.log", f"worker-{WORKER_NAME}.log"} <= names
    assert any(name.endswith(".log") and name[0].isdigit() for name in names), "no segment files"
    assert "imported 9 registrations" in scan.import_output
    records = sum(len(records) for records in scan.topics.values())
    record_bytes = sum(len(r.value) for records in scan.topics.values() for r in records)
    print(
        f"\nscanned {records} records ({record_bytes} bytes) on {len(scan.topics)} topics: "
        + ", ".join(f"{topic} {len(rs)}" for topic, rs in sorted(scan.topics.items()))
    )
    print(
        f"scanned {len(scan.files)} files ({sum(map(len, scan.files.values()))} bytes): "
        f"store, logs, metrics and broker segments"
    )


def test_the_scan_finds_the_numbers_where_they_are_the_operators_own_file(scan: Scan) -> None:
    source = {"operator-registrations.csv": scan.source}

    for holder in [SHARED_BY_IMPORT_AND_API, *IMPORT_ONLY]:
        assert occurrences([holder.sent], {}, source) == ["file operator-registrations.csv"]


def test_no_identity_number_is_kept_anywhere_as_sent_or_normalised(scan: Scan) -> None:
    numbers = {form for holder in EVERY_HOLDER for form in holder.forms()}
    print(f"\nlooked for {len(numbers)} forms of {len(set(EVERY_HOLDER))} identity numbers")

    assert scan.found(numbers) == []


def test_every_holder_is_named_by_the_keyed_hash_of_its_normalised_number(scan: Scan) -> None:
    secret = scan.settings.hmac_secret
    posted = {holder.ref(secret) for holder in [*SHARED_BY_API, SHARED_BY_IMPORT_AND_API]}
    posted |= {holder.ref(secret) for holder in API_ONLY}
    imported = {holder.ref(secret) for holder in [SHARED_BY_IMPORT_AND_API, *IMPORT_ONLY]}

    # Three spellings of one number are one holder.
    assert len({holder.ref(secret) for holder in SHARED_BY_API}) == 1
    assert posted <= scan.holder_refs_on_kafka
    assert posted | imported <= scan.holder_refs_in_store
    assert INVALID.ref(secret) not in scan.holder_refs_on_kafka | scan.holder_refs_in_store


def test_a_holder_ref_cannot_be_recomputed_without_the_secret(scan: Scan) -> None:
    secret = scan.settings.hmac_secret
    guesses: set[str] = set()
    for holder in EVERY_HOLDER:
        message = f"{holder.id_type}:{holder.nationality}:{holder.normalised}"
        guesses |= {
            hmac.new(b"another-secret", message.encode(), hashlib.sha256).hexdigest(),
            hmac.new(b"", message.encode(), hashlib.sha256).hexdigest(),
            hashlib.sha256(message.encode()).hexdigest(),
            hashlib.sha256(holder.normalised.encode()).hexdigest(),
            hashlib.sha256(holder.sent.encode()).hexdigest(),
        }
        assert holder.ref(secret) not in guesses

    assert scan.found(guesses) == []
    assert not guesses & (scan.holder_refs_on_kafka | scan.holder_refs_in_store)


def test_the_registrations_on_kafka_carry_no_holder_document(scan: Scan) -> None:
    published = published_by_the_api(scan.topics[scan.settings.topic_registrations])
    values = [orjson.loads(r.value) for r in published]

    assert values
    assert not [value for value in values if "holder" in value or "id_number" in value]


def test_a_number_produced_straight_to_kafka_stays_where_the_operator_put_it(scan: Scan) -> None:
    # The input topic holds what the operator produced; its dead letters, the
    # store, the logs and the dead-letter topic's segments hold none of it.
    topic = scan.settings.topic_registrations
    hits = scan.found(SENT_STRAIGHT_TO_KAFKA.forms())

    assert hits, "the raw registration is not on the input topic"
    assert [hit for hit in hits if f"topic {topic} " not in hit and f"/{topic}-" not in hit] == []


def test_dead_letters_of_raw_registrations_are_redacted_or_withheld(scan: Scan) -> None:
    letters = [record.json() for record in scan.topics[scan.settings.topic_dead_letter]]
    encodings = {letter["value_encoding"] for letter in letters}

    assert len(letters) >= 3
    assert "withheld" in encodings
    assert any('"id_number":"[redacted]"' in letter["value"] for letter in letters)
