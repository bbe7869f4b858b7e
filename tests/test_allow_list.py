"""The regulator's allow-list as the worker applies it: covered reasons stay off
a SIM's case, for the SIM or for every SIM of a holder, until the expiry. The
batch processor on a real SQLite file and a real PostgreSQL database, the
entries written as the API and `simguard allow-list load` write them."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import factories
import orjson
from test_batch_processor import BATCH_CLOCK, IMSI, OPERATOR, signed
from test_case_decisions import GRACE, _text, activation, flagged_unregistered, run, run_due
from test_case_decisions import settings as settings
from test_case_decisions import store as store

from schemas import pseudonym
from simguard import allow_list
from simguard.partitioning import partition_for_key
from simguard.settings import Settings
from simguard.store import Store
from workers.records import RecordInMemory

HOLDER = {"id_type": "passport", "id_number": "AB1234567", "nationality": "KH"}


def allow(
    store: Store, settings: Settings, until: datetime, codes: list[str] | None = None, **name: Any
) -> list[str]:
    entry = {"expires_at": until, "note": "A border trader, seen in person.", "codes": codes or []}
    _, sims = allow_list.add_entries(
        store, [entry | name], settings.hmac_secret, "regulator-key-1", BATCH_CLOCK
    )
    return sims


def recheck(settings: Settings, imsi: str) -> RecordInMemory:
    key = imsi.encode()
    return RecordInMemory(
        settings.topic_rechecks,
        partition_for_key(key, settings.topic_partitions),
        0,
        key,
        allow_list.recheck_value(imsi, BATCH_CLOCK),
    )


def case_of(store: Store, imsi: str = IMSI) -> dict[str, Any] | None:
    with store.reading() as tx:
        row = tx.fetchone("SELECT case_record FROM sims WHERE imsi = ?", (imsi,))
    return None if row is None or row[0] is None else dict(orjson.loads(row[0]))


def test_an_allow_listed_sim_is_not_flagged_for_the_codes_its_entry_covers(
    store_on_each_backend: Store, settings: Settings
) -> None:
    allow(store_on_each_backend, settings, BATCH_CLOCK + timedelta(days=30), imsi=IMSI)

    flagged_unregistered(store_on_each_backend, settings)

    assert case_of(store_on_each_backend) is None


def test_an_entry_for_other_codes_leaves_the_reason_on_the_case(
    store: Store, settings: Settings
) -> None:
    allow(store, settings, BATCH_CLOCK + timedelta(days=30), ["HIGH_RISK_ROAMING"], imsi=IMSI)

    flagged_unregistered(store, settings)

    case = case_of(store)
    assert case is not None and case["status"] == "flagged"


def test_the_recheck_an_entry_sends_clears_a_case_already_flagged(
    store_on_each_backend: Store, settings: Settings
) -> None:
    flagged_unregistered(store_on_each_backend, settings)
    sims = allow(store_on_each_backend, settings, BATCH_CLOCK + timedelta(days=30), imsi=IMSI)

    run(store_on_each_backend, settings, [recheck(settings, s) for s in sims], BATCH_CLOCK + GRACE)

    case = case_of(store_on_each_backend)
    assert case is not None and (case["version"], case["status"]) == (2, "cleared")


def test_the_reason_comes_back_when_the_entry_expires(store: Store, settings: Settings) -> None:
    until = BATCH_CLOCK + timedelta(days=2)
    allow(store, settings, until, imsi=IMSI)
    flagged_unregistered(store, settings)

    run_due(store, settings, until + timedelta(seconds=1))

    case = case_of(store)
    assert case is not None and [r["code"] for r in case["reasons"]] == ["UNREGISTERED"]


def test_a_holder_entry_covers_each_sim_registered_to_the_holder(
    store: Store, settings: Settings
) -> None:
    settings = settings.replace(hmac_secret="allow-list-test-hmac-secret-32-bytes-long")
    holder_ref = pseudonym.holder_ref(
        settings.hmac_secret, HOLDER["id_type"], HOLDER["nationality"], HOLDER["id_number"]
    )
    registration = factories.valid_registration_wire(
        operator=OPERATOR,
        imsi=IMSI,
        holder_ref=holder_ref,
        status="suspended",
        registered_at=_text(BATCH_CLOCK - timedelta(hours=1)),
    )
    run(
        store, settings, [signed(settings, settings.topic_registrations, registration)], BATCH_CLOCK
    )
    sims = allow(store, settings, BATCH_CLOCK + timedelta(days=30), holder=HOLDER)

    run(store, settings, [activation(settings, BATCH_CLOCK)], BATCH_CLOCK)

    assert sims == [IMSI]
    assert case_of(store) is None
