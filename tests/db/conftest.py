"""Fixtures shared by the single-process database tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.tasks import TaskResult
from django.tasks.signals import task_enqueued


@pytest.fixture
def enqueued_signals() -> Iterator[list[TaskResult[..., Any]]]:
    """Collect the task_result of every task_enqueued signal sent during the test."""
    received: list[TaskResult[..., Any]] = []

    def receive(sender: object, task_result: TaskResult[..., Any], **kwargs: object) -> None:
        received.append(task_result)

    task_enqueued.connect(receive, weak=False)
    yield received
    task_enqueued.disconnect(receive)
