"""The in-process wake-up: an enqueue next to the autostarted worker wakes it on commit only."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.db import transaction
from django.tasks.signals import task_enqueued

from taskmill.autostart import keeper
from taskmill.autostart.wakeup import connect_wakeup, wake_after_commit
from tests.testapp.tasks import build_report, noop

type CaptureCallbacks = Callable[..., Any]


@dataclass
class FakeKeeper:
    """Serves the default backend's "default" queue and counts wake-ups."""

    woken: int = 0
    queues: tuple[str, ...] = ("default",)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def serves(self, backend_alias: str, queue_name: str) -> bool:
        self.calls.append((backend_alias, queue_name))
        return backend_alias == "default" and queue_name in self.queues

    def wake(self) -> None:
        self.woken += 1


@pytest.fixture
def fake_keeper(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKeeper]:
    fake = FakeKeeper()
    monkeypatch.setattr(keeper, "_keeper", fake)
    connect_wakeup()
    yield fake
    task_enqueued.disconnect(wake_after_commit, dispatch_uid="taskmill.autostart.wakeup")


@pytest.mark.django_db
def test_enqueue__wakes_the_worker_when_it_commits(
    fake_keeper: FakeKeeper, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        noop.enqueue()

    assert fake_keeper.woken == 0
    assert len(callbacks) == 1
    callbacks[0]()
    assert fake_keeper.woken == 1


@pytest.mark.django_db
def test_enqueue__to_a_queue_the_worker_does_not_serve_wakes_nothing(
    fake_keeper: FakeKeeper, django_capture_on_commit_callbacks: CaptureCallbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        build_report.enqueue(1)

    assert callbacks == []
    assert fake_keeper.calls == [("default", "reports")]
    assert fake_keeper.woken == 0


@pytest.mark.django_db(transaction=True)
def test_enqueue__rolled_back_wakes_nothing(fake_keeper: FakeKeeper) -> None:
    def enqueue_then_fail() -> None:
        with transaction.atomic():
            noop.enqueue()
            raise RuntimeError("roll back")

    with pytest.raises(RuntimeError):
        enqueue_then_fail()

    assert fake_keeper.woken == 0

    with transaction.atomic():
        noop.enqueue()
        assert fake_keeper.woken == 0

    assert fake_keeper.woken == 1


@pytest.mark.django_db
def test_enqueue__without_a_keeper_registers_nothing(
    django_capture_on_commit_callbacks: CaptureCallbacks,
) -> None:
    connect_wakeup()
    try:
        with django_capture_on_commit_callbacks() as callbacks:
            noop.enqueue()
    finally:
        task_enqueued.disconnect(wake_after_commit, dispatch_uid="taskmill.autostart.wakeup")

    assert keeper.current_keeper() is None
    assert callbacks == []
