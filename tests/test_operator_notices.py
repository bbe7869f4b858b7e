"""Operator notices as the worker issues, closes and ages them: what a flag asks
of the SIM's operator, by when, and what closes it. The batch processor on a
real SQLite file and a real PostgreSQL database, with records built in memory."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import factories
import orjson
from test_batch_processor import BATCH_CLOCK, IMSI, OPERATOR, signed
from test_case_decisions import (
    DECIDED_AT,
    GRACE,
    _text,
    decision_record,
    flagged_unregistered,
    run,
    run_due,
    settings,
    store,
)

from simguard.settings import Settings
from simguard.store import Store, open_store
from simguard.store import notices as notice_rows

__all__ = ["settings", "store"]
FLAGGED_AT = BATCH_CLOCK + GRACE


def notice_topic(settings: Settings) -> str:
    return settings.notice_topic(OPERATOR)


def published_notices(store: Store, settings: Settings) -> list[dict[str, Any]]:
    with store.reading() as tx:
        rows = tx.fetchall(
            "SELECT msg_value FROM outbox WHERE topic = ? ORDER BY seq", (notice_topic(settings),)
        )
    return [orjson.loads(value) for (value,) in rows]


def current_notice(store: Store) -> dict[str, Any]:
    with store.reading() as tx:
        (notice,) = tx.fetchone("SELECT notice FROM notices WHERE imsi = ?", (IMSI,)) or ()
    loaded: dict[str, Any] = orjson.loads(notice)
    return loaded


def registration(settings: Settings, at: datetime, **overrides: Any) -> Any:
    event = factories.valid_registration_wire(
        operator=OPERATOR, imsi=IMSI, registered_at=_text(at), **overrides
    )
    return signed(settings, settings.topic_registrations, event, at=at)


def observation(settings: Settings, at: datetime, plmn: str) -> Any:
    event = factories.valid_network_event(
        operator=OPERATOR, imsi=IMSI, observed_at=_text(at), visited_plmn=plmn
    )
    return signed(settings, settings.topic_network_events, event, at=at)


def test_a_flag_issues_a_notice_on_the_operators_topic_due_after_the_reasons_deadline(
    store_on_each_backend: Store, settings: Settings
) -> None:
    flagged_unregistered(store_on_each_backend, settings)

    (notice,) = published_notices(store_on_each_backend, settings)
    assert (notice["action"], notice["reasons"], notice["status"]) == (
        "reverify",
        ["UNREGISTERED"],
        "open",
    )
    assert notice["case_version"] == 1
    assert notice["deadline"] == _text_micros(FLAGGED_AT + timedelta(hours=24))
    assert current_notice(store_on_each_backend) == notice


def test_a_verified_registration_after_the_notice_closes_it_as_actioned_on_time(
    store_on_each_backend: Store, settings: Settings
) -> None:
    flagged_unregistered(store_on_each_backend, settings)
    registered = FLAGGED_AT + timedelta(hours=2)

    outcome = run(store_on_each_backend, settings, [registration(settings, registered)], registered)

    notice = current_notice(store_on_each_backend)
    assert (notice["status"], notice["closed_by"], notice["on_time"]) == (
        "actioned",
        "reverification",
        True,
    )
    assert outcome.notice_actions == [(OPERATOR, 2 * 3600.0)]


def test_a_registration_older_than_the_notice_does_not_reverify_it(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    later = FLAGGED_AT + timedelta(hours=1)
    backfill = registration(settings, BATCH_CLOCK, verification="none")

    run(store, settings, [backfill], later)

    assert current_notice(store)["status"] == "open"


def test_a_suspension_closes_a_notice_as_actioned(store: Store, settings: Settings) -> None:
    flagged_unregistered(store, settings)
    suspended = FLAGGED_AT + timedelta(hours=30)

    run(store, settings, [registration(settings, suspended, status="suspended")], suspended)

    notice = current_notice(store)
    assert (notice["status"], notice["closed_by"], notice["on_time"]) == (
        "actioned",
        "suspension",
        False,
    )


def test_an_open_notice_turns_overdue_at_its_deadline_on_the_workers_clock(
    store_on_each_backend: Store, settings: Settings
) -> None:
    flagged_unregistered(store_on_each_backend, settings)
    deadline = FLAGGED_AT + timedelta(hours=24)

    run_due(store_on_each_backend, settings, deadline - timedelta(seconds=1))
    assert current_notice(store_on_each_backend)["status"] == "open"
    run_due(store_on_each_backend, settings, deadline + timedelta(seconds=1))

    assert current_notice(store_on_each_backend)["status"] == "overdue"
    with store_on_each_backend.reading() as tx:
        assert notice_rows.pending_counts(tx) == [(OPERATOR, "overdue", 1)]


def test_a_dismissal_withdraws_the_notice(store: Store, settings: Settings) -> None:
    flagged_unregistered(store, settings)

    run(store, settings, [decision_record(settings)], DECIDED_AT)

    notice = current_notice(store)
    assert (notice["status"], notice["closed_by"]) == ("withdrawn", "case_cleared")


def test_a_reverification_does_not_close_a_notice_to_suspend(
    store: Store, settings: Settings
) -> None:
    first = BATCH_CLOCK
    travel = [
        observation(settings, first, "52001"),
        observation(settings, first + timedelta(minutes=20), "44010"),
    ]
    run(store, settings, travel, first + timedelta(minutes=20))
    assert current_notice(store)["action"] == "suspend"
    registered = first + timedelta(hours=1)

    run(store, settings, [registration(settings, registered)], registered)

    assert current_notice(store)["status"] == "open"


def test_a_further_reason_keeps_the_earlier_deadline_and_takes_the_stronger_action(
    store: Store, settings: Settings
) -> None:
    flagged_unregistered(store, settings)
    first_deadline = current_notice(store)["deadline"]
    later = FLAGGED_AT + timedelta(hours=3)
    travel = [
        observation(settings, later, "52001"),
        observation(settings, later + timedelta(minutes=20), "44010"),
    ]

    run(store, settings, travel, later + timedelta(minutes=20))

    notice = current_notice(store)
    assert (notice["action"], notice["deadline"], notice["notice_version"]) == (
        "suspend",
        first_deadline,
        2,
    )
    assert notice["reasons"] == ["IMPOSSIBLE_TRAVEL", "UNREGISTERED"]


def test_the_feed_gives_each_notice_version_once_in_order_from_a_cursor(
    store_on_each_backend: Store, settings: Settings
) -> None:
    flagged_unregistered(store_on_each_backend, settings)
    run_due(store_on_each_backend, settings, FLAGGED_AT + timedelta(hours=25))

    with store_on_each_backend.reading() as tx:
        first = notice_rows.feed_after(tx, [OPERATOR], notice_rows.START, 1)
        rest = notice_rows.feed_after(tx, [OPERATOR], first[-1][0], 10)
        other = notice_rows.feed_after(tx, ["52001"], notice_rows.START, 10)

    statuses = [orjson.loads(value)["status"] for _, value in first + rest]
    assert statuses == ["open", "overdue"]
    assert other == []


def _text_micros(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _feed_row(seed: int) -> notice_rows.FeedRow:
    sim = factories.imsi(OPERATOR, seed)
    return (f"00000000-0000-4000-8000-{seed:012d}", 1, sim, OPERATOR, "open", "t", "{}")


def test_a_feed_reader_on_postgresql_never_skips_a_version_committed_after_a_later_one(
    postgres_database: str,
) -> None:
    slow, fast, reader = (open_store(postgres_database) for _ in range(3))
    try:
        open_transaction = slow.transaction()
        tx = open_transaction.__enter__()
        # The slow transaction takes its sequence number first and commits last.
        notice_rows.record(tx, [], [_feed_row(1)])
        with fast.transaction() as other:
            notice_rows.record(other, [], [_feed_row(2)])
        with reader.reading() as read:
            while_open = notice_rows.feed_after(read, [OPERATOR], notice_rows.START, 10)
        open_transaction.__exit__(None, None, None)
        with reader.reading() as read:
            after = notice_rows.feed_after(read, [OPERATOR], notice_rows.START, 10)
    finally:
        for store_ in (slow, fast, reader):
            store_.close()

    assert while_open == []
    assert len(after) == 2
