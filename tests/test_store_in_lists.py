"""The chunked IN-list helper every batch lookup uses."""

from __future__ import annotations

from simguard.store.in_lists import IN_LIST_CHUNK, in_chunks


def test_chunks_cover_every_value_in_order_with_one_placeholder_each() -> None:
    values = [f"imsi-{n}" for n in range(2 * IN_LIST_CHUNK + 3)]
    chunks = list(in_chunks(values))

    assert [len(chunk) for chunk, _ in chunks] == [IN_LIST_CHUNK, IN_LIST_CHUNK, 3]
    assert [v for chunk, _ in chunks for v in chunk] == values
    assert all(marks.split(",") == ["?"] * len(chunk) for chunk, marks in chunks)


def test_no_values_make_no_query() -> None:
    assert list(in_chunks([])) == []
