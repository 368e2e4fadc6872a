"""Turning calls into rows: unique de-duplication, the argument size limit, object references."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.tasks import TaskResult, default_task_backend
from django.test import override_settings

import taskmill
from taskmill.enqueueing import unique_key
from taskmill.exceptions import ArgumentsTooLarge
from taskmill.models import TaskRecord
from taskmill.states import State
from tests.testapp import tasks
from tests.testapp.models import Article, Token

pytestmark = pytest.mark.django_db


# --- unique -------------------------------------------------------------------------------


def test_unique__second_equal_enqueue_returns_the_first_result() -> None:
    first = tasks.unique_noop.enqueue(1)

    second = tasks.unique_noop.enqueue(1)

    assert second.id == first.id
    assert second == first
    assert TaskRecord.objects.count() == 1


def test_unique__different_arguments_are_different_tasks() -> None:
    one = tasks.unique_noop.enqueue(1)
    two = tasks.unique_noop.enqueue(2)

    assert one.id != two.id
    assert TaskRecord.objects.count() == 2


def test_unique__the_key_is_stored_only_on_unique_tasks() -> None:
    unique = tasks.unique_noop.enqueue(1)
    plain = tasks.add.enqueue(1, 2)

    assert TaskRecord.objects.get(id=unique.id).unique_key is not None
    assert TaskRecord.objects.get(id=plain.id).unique_key is None


def test_unique__plain_tasks_are_never_de_duplicated() -> None:
    first = tasks.add.enqueue(1, 2)
    second = tasks.add.enqueue(1, 2)

    assert first.id != second.id


def test_unique__still_de_duplicates_while_the_first_is_running() -> None:
    first = tasks.unique_noop.enqueue(5)
    TaskRecord.objects.filter(id=first.id).update(state=State.RUNNING)

    assert tasks.unique_noop.enqueue(5).id == first.id


def test_unique__a_finished_task_frees_the_key() -> None:
    first = tasks.unique_noop.enqueue(1)
    assert taskmill.cancel(first.id) is True

    again = tasks.unique_noop.enqueue(1)

    assert again.id != first.id
    assert TaskRecord.objects.get(id=first.id).unique_key is None
    assert TaskRecord.objects.get(id=again.id).state == State.READY


def test_unique__key_function_decides_what_is_equal() -> None:
    # key_of_first_argument: calls with the same first argument are the same task.
    first = tasks.with_callables.enqueue(10)
    same_key = tasks.with_callables.enqueue(10)
    other_key = tasks.with_callables.enqueue(11)

    assert same_key.id == first.id
    assert other_key.id != first.id


def test_unique__set_with_using() -> None:
    first = tasks.add.using(unique=True).enqueue(1, 2)
    second = tasks.add.using(unique=True).enqueue(1, 2)
    plain = tasks.add.enqueue(1, 2)

    assert second.id == first.id
    assert plain.id != first.id


def test_unique__keys_of_different_tasks_never_collide() -> None:
    unique_noop = tasks.unique_noop.enqueue(1)
    other_task = tasks.with_callables.enqueue(1)

    assert unique_noop.id != other_task.id


def test_unique__keyword_order_does_not_matter() -> None:
    first = tasks.echo.using(unique=True).enqueue(a=1, b=2)
    second = tasks.echo.using(unique=True).enqueue(b=2, a=1)

    assert second.id == first.id


def test_unique__de_duplicated_enqueue_sends_no_task_enqueued(
    enqueued_signals: list[TaskResult[..., Any]],
) -> None:
    first = tasks.unique_noop.enqueue(1)
    tasks.unique_noop.enqueue(1)
    tasks.unique_noop.enqueue(1)

    assert enqueued_signals == [first]


def test_unique__a_duplicate_inside_atomic_leaves_the_transaction_usable() -> None:
    with transaction.atomic():
        first = tasks.unique_noop.enqueue(1)
        duplicate = tasks.unique_noop.enqueue(1)
        after = tasks.add.enqueue(1, 2)  # would fail if the conflict aborted the transaction

    assert duplicate.id == first.id
    assert TaskRecord.objects.filter(id__in=[first.id, after.id]).count() == 2


def test_unique__equal_calls_in_one_enqueue_many_share_one_result() -> None:
    results = taskmill.enqueue_many(tasks.unique_noop, [((1,), {}), ((2,), {}), ((1,), {})])

    assert results[0].id == results[2].id
    assert results[1].id != results[0].id
    assert TaskRecord.objects.count() == 2


def test_unique_key__is_none_for_plain_tasks_and_stable_for_unique_ones() -> None:
    assert unique_key(tasks.add, [1, 2], {}) is None
    key = unique_key(tasks.unique_noop, [1], {})
    assert key is not None
    assert key == unique_key(tasks.unique_noop, [1], {})
    assert key != unique_key(tasks.unique_noop, [2], {})
    assert len(key) <= TaskRecord._meta.get_field("unique_key").max_length  # type: ignore[operator]  # max_length is set


# --- argument size limit ------------------------------------------------------------------


def test_enqueue__arguments_over_the_limit_are_refused_naming_the_setting() -> None:
    with override_settings(TASKMILL={"MAX_ARGUMENT_BYTES": 1024}):
        tasks.echo.enqueue("x" * 900)  # under the limit
        with pytest.raises(ArgumentsTooLarge) as caught:
            tasks.echo.enqueue("x" * 1100)

    message = str(caught.value)
    assert "tests.testapp.tasks.echo" in message
    assert "TASKMILL['MAX_ARGUMENT_BYTES'] (1024)" in message
    assert "pass its id or path instead" in message
    assert TaskRecord.objects.count() == 1


def test_arguments_too_large__is_a_value_error() -> None:
    assert issubclass(ArgumentsTooLarge, ValueError)


# --- for_object ---------------------------------------------------------------------------


def test_enqueue__for_object_stores_the_object_reference() -> None:
    article = Article.objects.create(title="Annual report")

    result = tasks.noop.using(for_object=article).enqueue()

    record = TaskRecord.objects.get(id=result.id)
    assert record.content_type == ContentType.objects.get_for_model(Article)
    assert record.object_id == str(article.pk)
    assert record.owner == article


def test_enqueue__for_object_with_a_uuid_primary_key() -> None:
    token = Token.objects.create(id=uuid.uuid4(), label="t")

    result = tasks.noop.using(for_object=token).enqueue()

    record = TaskRecord.objects.get(id=result.id)
    assert record.object_id == str(token.pk)
    assert record.owner == token


def test_enqueue__for_object_does_not_change_the_result() -> None:
    article = Article.objects.create(title="a")

    result = tasks.noop.using(for_object=article).enqueue()

    assert result.task == tasks.noop
    assert default_task_backend.get_result(result.id) == result


def test_enqueue__without_for_object_stores_no_reference() -> None:
    record = TaskRecord.objects.get(id=tasks.noop.enqueue().id)

    assert record.content_type is None
    assert record.object_id is None
