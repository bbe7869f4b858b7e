"""What `simguard api` and `simguard worker` write to stdout and stderr, as
a log pipeline receives it: one JSON object per line with a level and a
message (`level`, `msg`), the caller's x-correlator on every request line, and never an API
key, the HMAC secret, an identity number or a holder_ref -- on the happy path
and on the error paths alike (bad identity number, unknown key, malformed
body, a poison record straight on Kafka)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import pytest
from factories import (
    OPERATOR,
    iccid,
    imsi,
    msisdn,
    thai_national_id,
    valid_activation,
    valid_holder,
    valid_registration_request,
    valid_registration_wire,
)
from factories import holder_ref as wire_holder_ref
from kafka_helpers import read_all
from prometheus_server import WAIT_SECONDS, running_simguard, stack_settings
from worker_helpers import flagged_reasons, produce, wait_for

from service.pseudonymise import holder_ref
from simguard.api_keys import KEY_PREFIX
from simguard.broker import KafkaNode

LEVELS: Final = {"debug", "info", "warning", "error", "critical"}
# Short, so the worker's deadline path runs (and could log) within the test.
GRACE_SECONDS: Final = 2
# One holder registering this many SIMs: one over the packaged limit of 5.
SIMS_OF_ONE_HOLDER: Final = 6


@dataclass(frozen=True)
class Posted:
    """What went in, and which secrets must not come out."""

    correlators: frozenset[str]
    api_keys: frozenset[str]
    id_numbers: frozenset[str]
    holder_refs: frozenset[str]
    hmac_secret: str


@dataclass(frozen=True)
class Logs:
    """Everything both processes wrote, from start to stop, stream by stream."""

    api: dict[str, str]
    worker: dict[str, str]
    posted: Posted

    def all_streams(self) -> dict[str, str]:
        return {f"api {name}": text for name, text in self.api.items()} | {
            f"worker {name}": text for name, text in self.worker.items()
        }


def _wrong_check_digit(id_number: str) -> str:
    """A national ID the API must refuse (422) -- and still not log."""
    return id_number[:-1] + str((int(id_number[-1]) + 1) % 10)


@pytest.fixture(scope="module")
def logs(kafka_broker: KafkaNode, tmp_path_factory: pytest.TempPathFactory) -> Logs:
    directory = tmp_path_factory.mktemp("structured-logs")
    settings = stack_settings(kafka_broker, directory)
    settings = settings.replace(
        rules=dataclasses.replace(settings.rules, unregistered_grace_seconds=GRACE_SECONDS)
    )
    shared_id = thai_national_id(424242)
    invalid_id = _wrong_check_digit(thai_national_id(515151))
    poison = valid_registration_wire(
        imsi=imsi(OPERATOR, 9001), holder_ref=wire_holder_ref(9001), msisdn="not-a-number"
    )
    correlators: set[str] = set()
    with running_simguard(settings, directory, OPERATOR) as simguard:
        key_id = simguard.key.removeprefix(KEY_PREFIX).partition("_")[0]
        # A known key id with a wrong secret of the right length (43 characters,
        # token_urlsafe(32)): the refusal path that has looked the key up.
        wrong_key = f"{KEY_PREFIX}{key_id}_{'x' * 43}"

        def post(number: int, path: str, body: Any, key: str = simguard.key) -> int:
            correlator = f"logs-test:{number}"
            correlators.add(correlator)
            answer = simguard.api.post(path, body, key, {"x-correlator": correlator})
            return answer.status_code

        same_holder = [
            valid_registration_request(
                imsi=imsi(OPERATOR, seed),
                iccid=iccid(seed),
                msisdn=msisdn(seed),
                holder=valid_holder(id_number=shared_id),
            )
            for seed in range(1, 1 + SIMS_OF_ONE_HOLDER)
        ]
        invalid = valid_registration_request(
            imsi=imsi(OPERATOR, 101), holder=valid_holder(id_number=invalid_id)
        )
        activation = valid_activation(imsi=imsi(OPERATOR, 201), iccid=iccid(201))
        statuses = [
            post(1, "/v1/registrations", {"events": same_holder}),
            post(2, "/v1/registrations", invalid),
            post(3, "/v1/registrations", {"events": [invalid]}),
            post(4, "/v1/registrations", same_holder[0], key=wrong_key),
            post(5, "/v1/activations", activation),
            post(6, "/v1/registrations", "not an object"),
        ]
        assert statuses == [202, 422, 422, 401, 202, 400], statuses
        produce(settings, settings.topic_registrations, [poison])

        expected_flags = {"IDENTITY_OVER_LIMIT", "UNREGISTERED"}

        def flags_raised() -> bool:
            raised = set().union(*flagged_reasons(settings).values())
            return expected_flags <= raised

        assert wait_for(flags_raised, timeout=WAIT_SECONDS), f"no {expected_flags} flags"
        assert read_all(settings, settings.topic_dead_letter, min_count=1), "no dead letter"
    # Stopped: the shutdown lines are in the files too.
    posted = Posted(
        correlators=frozenset(correlators),
        api_keys=frozenset({simguard.key, wrong_key}),
        id_numbers=frozenset({shared_id, invalid_id}),
        holder_refs=frozenset(
            {
                holder_ref(settings.hmac_secret, "national_id", "TH", shared_id),
                holder_ref(settings.hmac_secret, "national_id", "TH", invalid_id),
                poison["holder_ref"],
            }
        ),
        hmac_secret=settings.hmac_secret,
    )
    return Logs(
        api={
            "stdout": _read(simguard.api.stdout_path),
            "stderr": _read(simguard.api.stderr_path),
        },
        worker={"stdout+stderr": simguard.worker.log_text()},
        posted=posted,
    )


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


def _not_structured(text: str) -> list[str]:
    """Lines that are not a JSON object with a known level and a non-empty message."""
    bad = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            bad.append(line)
            continue
        if not (
            isinstance(parsed, dict)
            and parsed.get("level") in LEVELS
            and isinstance(parsed.get("msg"), str)
            and parsed["msg"]
        ):
            bad.append(line)
    return bad


def _request_lines(text: str) -> list[dict[str, Any]]:
    lines = []
    for line in text.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict) and parsed.get("msg") == "request":
            lines.append(parsed)
    return lines


def _leaks(logs: Logs, secrets: frozenset[str]) -> dict[str, list[str]]:
    """Per stream, the lines that contain any of `secrets`."""
    found = {
        stream: [line for line in text.splitlines() if any(s in line for s in secrets)]
        for stream, text in logs.all_streams().items()
    }
    return {stream: lines for stream, lines in found.items() if lines}


def test_the_api_logs_only_json_lines_with_a_level_and_a_message(logs: Logs) -> None:
    bad = [
        f"{stream}: {line}" for stream, text in logs.api.items() for line in _not_structured(text)
    ]

    assert any(logs.api.values()), "the API logged nothing"
    assert bad == [], (
        "BUG in service/gunicorn_conf.py: gunicorn's own lines (errorlog '-' in its default "
        "format) are plain text; give gunicorn.error a handler with "
        "service.request_log.JsonFormatter through logconfig_dict"
    )


def test_the_worker_logs_only_json_lines_with_a_level_and_a_message(logs: Logs) -> None:
    bad = [
        f"{stream}: {line}"
        for stream, text in logs.worker.items()
        for line in _not_structured(text)
    ]

    assert any(logs.worker.values()), "the worker logged nothing"
    assert bad == []


def test_every_request_is_logged_with_the_correlator_it_was_sent_with(logs: Logs) -> None:
    lines = _request_lines("".join(logs.api.values()))

    logged = {line.get("correlator") for line in lines}

    assert logs.posted.correlators <= logged, (logs.posted.correlators - logged, lines)


def test_no_api_key_is_logged(logs: Logs) -> None:
    assert _leaks(logs, logs.posted.api_keys) == {}


def test_the_hmac_secret_is_not_logged(logs: Logs) -> None:
    assert _leaks(logs, frozenset({logs.posted.hmac_secret})) == {}


def test_no_identity_number_is_logged_valid_or_not(logs: Logs) -> None:
    assert _leaks(logs, logs.posted.id_numbers) == {}


def test_no_holder_ref_is_logged(logs: Logs) -> None:
    assert _leaks(logs, logs.posted.holder_refs) == {}
