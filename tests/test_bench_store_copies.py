"""The memory benchmark's store of many SIMs: copies of what a real worker
wrote for a few, which a worker must then treat as SIMs it wrote itself."""

from __future__ import annotations

import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from kafka_helpers import MakeSettings
from worker_helpers import WorkerProcess, register, wait_for

from bench import events
from bench.kafka_io import produce, watch_commits
from bench.memory import save_copy, template_records
from bench.store_copies import CopyError, Template, add_copies, shard_of
from schemas.case_record import record_id_for
from simguard.settings import Settings

TEMPLATE_SIMS = 400
# Three sightings per SIM take a few abroad soon after their activation at
# home, so some template SIMs are flagged and their case records get copied.
OBSERVATIONS_PER_SIM = 3
PER_SIM_TABLES = ("sims", "registrations", "registration_events", "dealer_activations")


def _store_path(settings: Settings) -> Path:
    return Path(settings.database_url.removeprefix("sqlite:///"))


def _write_template(settings: Settings, tmp_path: Path) -> Path:
    """A real worker applies a registration, an activation and observations
    of each SIM; its store, once it has stopped, is the template."""
    records = template_records(settings, TEMPLATE_SIMS, OBSERVATIONS_PER_SIM, datetime.now(UTC))
    worker = WorkerProcess(settings, "template", tmp_path).start()
    try:
        worker.wait_ready()
        produce(settings, records)
        inputs = settings.input_topics()[:3]
        assert watch_commits(settings, inputs, len(records), timeout=90).done, worker.log_text()
    finally:
        worker.terminate()
    template = tmp_path / "template.db"
    save_copy(_store_path(settings), template)
    return template


@pytest.fixture
def template(make_settings: MakeSettings, tmp_path: Path) -> tuple[Settings, Path]:
    settings = make_settings()
    return settings, _write_template(settings, tmp_path)


def _count(store: Path, table: str) -> int:
    with sqlite3.connect(store) as connection:
        count: int = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return count


@pytest.mark.timeout(180)
def test_each_copy_adds_the_templates_per_sim_rows(template: tuple[Settings, Path]) -> None:
    settings, path = template
    store = _store_path(settings)
    add_copies(store, Template.check(path, TEMPLATE_SIMS), range(1, 3), settings.topic_partitions)
    for table in (*PER_SIM_TABLES, "processed_events"):
        assert _count(store, table) == 3 * _count(path, table), table


@pytest.mark.timeout(180)
def test_copied_rows_name_the_copys_sim_holder_shard_and_events(
    template: tuple[Settings, Path],
) -> None:
    settings, path = template
    store = _store_path(settings)
    add_copies(store, Template.check(path, TEMPLATE_SIMS), range(1, 3), settings.topic_partitions)
    with sqlite3.connect(store) as connection:
        registrations = {
            row[0]: row[1:]
            for row in connection.execute(
                "SELECT imsi, event_id, iccid, msisdn, holder_ref FROM registrations"
            )
        }
        ledger_keys = [
            key for (key,) in connection.execute("SELECT event_key FROM processed_events")
        ]
        sims = connection.execute("SELECT imsi, shard, state, case_record FROM sims").fetchall()
        histories = dict(
            connection.execute("SELECT imsi, event_id FROM registration_events").fetchall()
        )
        dealer_activations = connection.execute(
            "SELECT dealer_key, imsi FROM dealer_activations"
        ).fetchall()
    for dealer_key, imsi in dealer_activations:
        operator, n = events.operator_of(int(imsi[5:])), int(imsi[5:])
        assert dealer_key == f"{operator}:D-{operator}-{n // 200:06d}"
    flagged = 0
    for imsi, shard, text, case_text in sims:
        n = int(imsi[5:])
        state = orjson.loads(text)
        event_id, iccid, msisdn, holder_ref = registrations[imsi]
        assert imsi == events.imsi(n)
        assert shard == shard_of(imsi, settings.topic_partitions)
        assert (
            (state["iccid"], state["msisdn"])
            == (iccid, msisdn)
            == (
                events.iccid(n),
                events.msisdn(n),
            )
        )
        assert holder_ref == events.holder_ref(events.holder_of(n))
        assert histories[imsi] == event_id
        if case_text is not None:
            flagged += 1
            case = orjson.loads(case_text)
            assert (case["imsi"], case["iccid"]) == (imsi, iccid)
            assert case["record_id"] == record_id_for(imsi, case["version"])
    assert flagged % 3 == 0 and flagged > 0
    # Each copy's ledger has keys of its own.
    assert len(set(ledger_keys)) == len(ledger_keys)


@pytest.mark.timeout(240)
def test_a_worker_flags_a_copied_sim_as_it_flags_its_template(
    template: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, path = template
    add_copies(
        _store_path(settings), Template.check(path, TEMPLATE_SIMS), range(1, 2),
        settings.topic_partitions,
    )  # fmt: skip
    original, copy = 1, 1 + TEMPLATE_SIMS
    suspended_at = datetime.now(UTC) - timedelta(minutes=2)
    worker = WorkerProcess(settings, "on-copies", tmp_path).start()
    try:
        worker.wait_ready()
        # The same events for both SIMs: only the IMSI (and the event ids) differ.
        seen = events.observation(original, 7, suspended_at + timedelta(minutes=1))
        records = []
        for n in (original, copy):
            for topic, event in (
                (
                    settings.topic_registrations,
                    events.registration_wire(n, suspended_at, "suspended"),
                ),
                (settings.topic_network_events, {**seen, "imsi": events.imsi(n)}),
            ):
                event = {**event, "event_id": str(uuid.uuid4())}
                records.append((topic, event["imsi"].encode(), events.json_bytes(event)))
        produce(settings, records)
        imsis = {events.imsi(original), events.imsi(copy)}
        cases = wait_for(lambda: imsis <= set(register(settings, timeout=2)), timeout=60)
        assert cases, worker.log_text()[-2000:]
    finally:
        worker.terminate()
    latest = register(settings)
    first, second = (latest[events.imsi(n)] for n in (original, copy))
    assert [r["code"] for r in first["reasons"]] == [r["code"] for r in second["reasons"]]
    assert first["version"] == second["version"]
    assert second["msisdn"] == events.msisdn(copy)
    assert second["record_id"] == record_id_for(events.imsi(copy), second["version"])


@pytest.mark.timeout(180)
def test_a_template_naming_another_sims_identifier_is_refused(
    template: tuple[Settings, Path],
) -> None:
    _, path = template
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE sims SET state = replace(state, '\"behaviour\":', "
            '\'"other":"520010000099999","behaviour":\') WHERE imsi = ?',
            (events.imsi(3),),
        )
    with pytest.raises(CopyError, match="520010000099999"):
        Template.check(path, TEMPLATE_SIMS)
