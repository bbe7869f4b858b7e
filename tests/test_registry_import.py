"""`simguard registry import`: bulk-loaded registrations, pseudonymised on the
way in, that the worker then treats like registrations it applied itself."""

from __future__ import annotations

import csv
import dataclasses
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import factories
import pytest
from kafka_helpers import MakeSettings
from worker_helpers import SIMGUARD, WorkerProcess, flagged_reasons, produce, settings_env, wait_for

from registry_import.csv_import import COLUMNS, import_csv
from schemas.pseudonym import holder_ref
from simguard.settings import Settings
from simguard.store import open_store
from simguard.store.registrations import HOLDER_INDEX

OPERATOR = "52003"
REGISTERED_AT = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(seed: int, holder_seed: int | None = None, **overrides: str) -> dict[str, str]:
    values = {
        "imsi": factories.imsi(OPERATOR, seed),
        "iccid": factories.iccid(seed),
        "msisdn": factories.msisdn(seed),
        "operator": OPERATOR,
        "id_type": "national_id",
        "id_number": factories.thai_national_id(holder_seed or seed),
        "nationality": "TH",
        "verification": "in_person",
        "registered_at": REGISTERED_AT,
        "status": "active",
    }
    return values | overrides


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    base = make_settings()
    return base.replace(rules=dataclasses.replace(base.rules, unregistered_grace_seconds=2))


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store_settings(request: pytest.FixtureRequest, make_settings: MakeSettings) -> Settings:
    if request.param == "postgresql":
        return make_settings(database_url=request.getfixturevalue("postgres_database"))
    return make_settings()


def stored(settings: Settings, sql: str) -> list[tuple[object, ...]]:
    store = open_store(settings.database_url)
    try:
        with store.transaction() as tx:
            return tx.fetchall(sql)
    finally:
        store.close()


def test_import_counts_rejected_rows_by_reason_without_their_content(
    any_store_settings: Settings, tmp_path: Path
) -> None:
    settings = any_store_settings
    bad_id = row(3, id_number="1234567890123")
    rows = [row(1), row(2), bad_id, row(4, iccid="8966000000000000001")]
    summary = import_csv(settings, write_csv(tmp_path / "r.csv", rows), workers=1, recheck=False)
    assert (summary.imported, summary.rejected) == (2, 2)
    assert summary.first_rejected_lines == [4, 5]
    assert "1234567890123" not in summary.describe()
    assert set(summary.reasons) == {"invalid holder/id_number", "invalid iccid"}


def test_imported_holder_is_pseudonymised_and_the_raw_number_is_not_stored(
    settings: Settings, tmp_path: Path
) -> None:
    import_csv(settings, write_csv(tmp_path / "r.csv", [row(1)]), workers=1, recheck=False)
    store = open_store(settings.database_url)
    with store.transaction() as tx:
        stored = tx.fetchone("SELECT holder_ref FROM registrations")
    expected = holder_ref(settings.hmac_secret, "national_id", "TH", factories.thai_national_id(1))
    assert stored == (expected,)
    database = Path(settings.database_url.removeprefix("sqlite:///"))
    raw = factories.thai_national_id(1).encode()
    assert all(raw not in p.read_bytes() for p in database.parent.glob("simguard.db*"))


def test_cli_import_prints_a_summary(settings: Settings, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", [row(1), row(2, iccid="1")])
    result = subprocess.run(
        [SIMGUARD, "registry", "import", str(path)],
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert "imported 1 registrations, rejected 1" in result.stdout


def test_imported_registration_counts_for_the_worker_and_over_limit_sims_are_flagged(
    settings: Settings, tmp_path: Path
) -> None:
    rows = [row(seed, holder_seed=77) for seed in range(1, 8)]
    rows = [dict(r, registered_at=f"{REGISTERED_AT[:-3]}{i:02d}Z") for i, r in enumerate(rows)]
    summary = import_csv(settings, write_csv(tmp_path / "r.csv", rows), workers=1)
    assert summary.rechecks == 2
    worker = WorkerProcess(settings, "w1", tmp_path).start()
    try:
        activations = [
            factories.valid_activation(
                operator=OPERATOR,
                imsi=factories.imsi(OPERATOR, seed),
                iccid=factories.iccid(seed),
                msisdn=factories.msisdn(seed),
            )
            for seed in (1, 50)
        ]
        produce(settings, settings.topic_activations, activations)
        expected = {
            factories.imsi(OPERATOR, 6): {"IDENTITY_OVER_LIMIT"},
            factories.imsi(OPERATOR, 7): {"IDENTITY_OVER_LIMIT"},
            factories.imsi(OPERATOR, 50): {"UNREGISTERED"},
        }
        assert wait_for(lambda: flagged_reasons(settings) == expected, timeout=60), flagged_reasons(
            settings
        )
    finally:
        worker.stop_quietly()


def test_of_two_rows_for_one_sim_the_later_registration_is_kept_whatever_the_file_order(
    any_store_settings: Settings, tmp_path: Path
) -> None:
    later = row(1, registered_at=f"{REGISTERED_AT[:-3]}59Z", status="suspended")
    earlier = row(1, registered_at=f"{REGISTERED_AT[:-3]}00Z", verification="ekyc")
    rows = [later, row(2), earlier]
    path = write_csv(tmp_path / "r.csv", rows)
    summary = import_csv(any_store_settings, path, workers=1, recheck=False)
    assert (summary.imported, summary.rejected) == (3, 0)
    query = "SELECT imsi, status, verification, registered_at FROM registrations ORDER BY imsi"
    assert stored(any_store_settings, query)[0] == (
        later["imsi"],
        "suspended",
        "in_person",
        f"{REGISTERED_AT[:-3]}59.000000Z",
    )
    assert stored(any_store_settings, "SELECT count(*) FROM registration_events") == [(3,)]


def test_importing_the_same_file_again_changes_nothing(
    any_store_settings: Settings, tmp_path: Path
) -> None:
    rows = [row(seed, holder_seed=seed // 2 + 1) for seed in range(1, 40)]
    path = write_csv(tmp_path / "r.csv", rows)
    import_csv(any_store_settings, path, workers=2, recheck=False)
    query = (
        "SELECT imsi, event_id, holder_ref, status, holder_since, holder_since_event "
        "FROM registrations ORDER BY imsi"
    )
    first = stored(any_store_settings, query)
    summary = import_csv(any_store_settings, path, workers=2, recheck=False)
    assert summary.imported == 39
    assert stored(any_store_settings, query) == first
    assert stored(any_store_settings, "SELECT count(*) FROM registration_events") == [(39,)]


def test_a_first_import_leaves_the_holder_index_in_place(
    any_store_settings: Settings, tmp_path: Path
) -> None:
    # Into an empty store the index is dropped for the load and built at its end.
    import_csv(any_store_settings, write_csv(tmp_path / "r.csv", [row(1), row(2)]), recheck=False)
    if any_store_settings.database_url.startswith("sqlite"):
        query = "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'registrations'"
    else:
        query = "SELECT indexname FROM pg_indexes WHERE tablename = 'registrations'"
    assert (HOLDER_INDEX,) in stored(any_store_settings, query)


def test_a_foreign_holders_fourth_imported_sim_with_one_operator_is_rechecked_and_flagged(
    settings: Settings, tmp_path: Path
) -> None:
    passport = {"id_type": "passport", "id_number": "MB1234567", "nationality": "MM"}
    rows = [
        row(seed, registered_at=f"{REGISTERED_AT[:-3]}{seed:02d}Z", **passport)
        for seed in range(21, 25)
    ]
    summary = import_csv(settings, write_csv(tmp_path / "r.csv", rows), workers=1)
    assert summary.rechecks == 1
    worker = WorkerProcess(settings, "w1", tmp_path).start()
    try:
        expected = {factories.imsi(OPERATOR, 24): {"IDENTITY_OVER_LIMIT"}}
        assert wait_for(lambda: flagged_reasons(settings) == expected, timeout=60), flagged_reasons(
            settings
        )
    finally:
        worker.stop_quietly()


def test_a_sim_its_worker_already_holds_is_sent_a_recheck_and_gets_its_registration(
    settings: Settings, tmp_path: Path
) -> None:
    seed = 9
    imsi = factories.imsi(OPERATOR, seed)
    worker = WorkerProcess(settings, "w1", tmp_path).start()
    try:
        activation = factories.valid_activation(
            operator=OPERATOR, imsi=imsi, iccid=factories.iccid(seed), msisdn=factories.msisdn(seed)
        )
        produce(settings, settings.topic_activations, [activation])
        assert wait_for(lambda: flagged_reasons(settings) == {imsi: {"UNREGISTERED"}}, timeout=60)
        summary = import_csv(settings, write_csv(tmp_path / "r.csv", [row(seed), row(10)]))
        assert summary.rechecks == 1
        assert wait_for(lambda: imsi not in flagged_reasons(settings), timeout=60), flagged_reasons(
            settings
        )
    finally:
        worker.stop_quietly()


def test_an_imported_revoked_registration_is_revoked_since_its_own_time(
    any_store_settings: Settings, tmp_path: Path
) -> None:
    at = f"{REGISTERED_AT[:-3]}10Z"
    rows = [row(1, registered_at=at, status="suspended"), row(2, registered_at=at)]
    import_csv(any_store_settings, write_csv(tmp_path / "r.csv", rows), workers=1, recheck=False)
    query = "SELECT status, revoked_since FROM registrations ORDER BY imsi"
    assert stored(any_store_settings, query) == [
        ("suspended", f"{REGISTERED_AT[:-3]}10.000000Z"),
        ("active", None),
    ]


def test_a_registration_that_stays_revoked_through_a_later_import_keeps_since_when(
    any_store_settings: Settings, tmp_path: Path
) -> None:
    suspended = row(1, registered_at=f"{REGISTERED_AT[:-3]}10Z", status="suspended")
    deregistered = row(1, registered_at=f"{REGISTERED_AT[:-3]}50Z", status="deregistered")
    reactivated = row(2, registered_at=f"{REGISTERED_AT[:-3]}50Z")
    earlier = [suspended, row(2, registered_at=f"{REGISTERED_AT[:-3]}10Z", status="suspended")]
    import_csv(any_store_settings, write_csv(tmp_path / "a.csv", earlier), recheck=False)
    later = [deregistered, reactivated]
    import_csv(any_store_settings, write_csv(tmp_path / "b.csv", later), recheck=False)
    query = "SELECT status, revoked_since FROM registrations ORDER BY imsi"
    assert stored(any_store_settings, query) == [
        ("deregistered", f"{REGISTERED_AT[:-3]}10.000000Z"),
        ("active", None),
    ]
