"""Task result ids: UUID version 7, time-ordered, and the parser that never raises."""

import time
import uuid

import pytest

from taskmill.ids import dashed, new_task_hexes, new_task_id, new_task_ids, parse_task_id


def test_new_task_id__is_a_version_7_rfc_4122_uuid() -> None:
    task_id = new_task_id()

    assert task_id.version == 7
    assert task_id.variant == uuid.RFC_4122


def test_new_task_id__embeds_the_current_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    task_id = new_task_id()
    after = time.time_ns() // 1_000_000

    assert before <= task_id.int >> 80 <= after


def test_new_task_id__ids_sort_in_creation_order_even_within_a_millisecond() -> None:
    ids = [new_task_id() for _ in range(2_000)]

    assert ids == sorted(ids)
    assert [str(task_id) for task_id in ids] == sorted(str(task_id) for task_id in ids)
    assert len(set(ids)) == len(ids)


def test_new_task_id__a_stopped_clock_still_gives_ordered_unique_ids(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # More ids than the 4,096 one millisecond's counter holds: the next millisecond is borrowed.
    frozen = time.time_ns()
    monkeypatch.setattr(time, "time_ns", lambda: frozen)

    ids = [new_task_id() for _ in range(5_000)]

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(task_id.version == 7 for task_id in ids)


def test_new_task_id__many_ids_never_collide() -> None:
    ids = {new_task_id() for _ in range(10_000)}

    assert len(ids) == 10_000


def test_parse_task_id__accepts_the_string_form_and_uuid_objects() -> None:
    task_id = new_task_id()

    assert parse_task_id(str(task_id)) == task_id
    assert parse_task_id(task_id) is task_id
    assert parse_task_id(task_id.hex) == task_id


@pytest.mark.parametrize(
    "value",
    ["", "123", "not-a-uuid", "0190a1b2-c3d4-7e5f-8a9b", " ", None, 123, 1.5, b"x" * 16, []],
    ids=repr,
)
def test_parse_task_id__returns_none_for_anything_that_is_not_an_id(value: object) -> None:
    assert parse_task_id(value) is None


def test_new_task_ids__many_at_once_are_ordered_unique_and_after_earlier_ids() -> None:
    before = new_task_id()

    ids = new_task_ids(5_000)
    after = new_task_id()

    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(task_id.version == 7 and task_id.variant == uuid.RFC_4122 for task_id in ids)
    assert before < ids[0]
    assert ids[-1] < after


def test_new_task_ids__none_asked_gives_none() -> None:
    assert new_task_ids(0) == []


def test_new_task_hexes__are_the_hex_digits_of_ordered_version_7_ids() -> None:
    before = new_task_id()

    hexes = new_task_hexes(5_000)
    after = new_task_id()

    ids = [uuid.UUID(hex=value) for value in hexes]
    assert [task_id.hex for task_id in ids] == hexes
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(task_id.version == 7 and task_id.variant == uuid.RFC_4122 for task_id in ids)
    assert before < ids[0]
    assert ids[-1] < after


def test_dashed__writes_hex_digits_as_str_of_the_uuid_does() -> None:
    task_id = new_task_id()

    assert dashed(task_id.hex) == str(task_id)
