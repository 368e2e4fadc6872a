"""Task result ids: UUID version 7, time-ordered, and the parser that never raises."""

import time
import uuid

import pytest

from taskmill.ids import new_task_id, parse_task_id


def test_new_task_id__is_a_version_7_rfc_4122_uuid() -> None:
    task_id = new_task_id()

    assert task_id.version == 7
    assert task_id.variant == uuid.RFC_4122


def test_new_task_id__embeds_the_current_unix_time_in_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    task_id = new_task_id()
    after = time.time_ns() // 1_000_000

    assert before <= task_id.int >> 80 <= after


def test_new_task_id__ids_are_unique_and_sort_by_creation_time() -> None:
    first = new_task_id()
    second = new_task_id()
    # Ids made within one millisecond order randomly; take the first of a later millisecond.
    while second.int >> 80 == first.int >> 80:
        second = new_task_id()

    assert first != second
    assert first < second
    assert str(first) < str(second)


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
