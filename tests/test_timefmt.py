"""Stored timestamps: fixed-width UTC text that sorts as the moments do."""

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from simguard.timefmt import from_text, to_text

moments = st.datetimes(
    min_value=datetime(1000, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
)


def test_to_text_is_fixed_width_utc_with_microseconds() -> None:
    moment = datetime(2026, 11, 23, 17, 5, 9, tzinfo=timezone(timedelta(hours=7)))
    assert to_text(moment) == "2026-11-23T10:05:09.000000Z"


@given(moments)
def test_to_text_round_trips_through_from_text(moment: datetime) -> None:
    assert from_text(to_text(moment)) == moment


@given(moments, moments)
def test_to_text_sorts_as_the_moments_do(first: datetime, second: datetime) -> None:
    assert (to_text(first) < to_text(second)) == (first < second)


@given(moments, st.integers(min_value=-14 * 60, max_value=14 * 60))
def test_to_text_of_an_offset_time_is_its_utc_moment(moment: datetime, minutes: int) -> None:
    local = moment.astimezone(timezone(timedelta(minutes=minutes)))
    assert to_text(local) == to_text(moment)
