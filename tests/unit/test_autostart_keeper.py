"""The keeper's restart backoff and wake-up, driven step by step with a stand-in process."""

import signal
from dataclasses import dataclass, field

import pytest

from taskmill.autostart.keeper import RESTART_MAX, RESTART_MIN, STABLE_AFTER, Keeper
from taskmill.autostart.plan import Plan
from taskmill.conf import build_settings


@dataclass
class ExitedProcess:
    """A worker process that has exited with `code`; records signals sent to it."""

    code: int | None = 1
    pid: int = 4242
    signals: list[int] = field(default_factory=list)

    @property
    def returncode(self) -> int | None:
        return self.code

    def poll(self) -> int | None:
        return self.code

    def send_signal(self, signum: int) -> None:
        self.signals.append(signum)


@pytest.fixture
def keeper() -> Keeper:
    kept = Keeper(build_settings({"AUTOSTART": True}))
    kept.plan = Plan(
        backend_alias="default", database_alias="default", queue_names=("default",), concurrency=1
    )
    return kept


def test_reap_worker__restarts_with_doubling_delays_up_to_the_cap(keeper: Keeper) -> None:
    delays = []
    for step in range(10):
        now = 1000.0 * (step + 1)
        keeper.process = ExitedProcess()  # type: ignore[assignment]  # a stand-in Popen
        keeper.started_at = now - 1
        keeper._reap_worker(now)
        delays.append(keeper.next_start_at - now)

    assert delays[:4] == [RESTART_MIN, 2 * RESTART_MIN, 4 * RESTART_MIN, 8 * RESTART_MIN]
    assert max(delays) == RESTART_MAX
    assert keeper.process is None


def test_reap_worker__a_worker_that_ran_long_is_restarted_quickly_again(keeper: Keeper) -> None:
    keeper.restart_delay = RESTART_MAX
    keeper.process = ExitedProcess()  # type: ignore[assignment]  # a stand-in Popen
    keeper.started_at = 0.0

    keeper._reap_worker(STABLE_AFTER)

    assert keeper.next_start_at == STABLE_AFTER + RESTART_MIN


def test_reap_worker__leaves_a_running_worker_alone(keeper: Keeper) -> None:
    running = ExitedProcess(code=None)
    keeper.process = running  # type: ignore[assignment]  # a stand-in Popen

    keeper._reap_worker(10.0)

    assert keeper.process is not None
    assert running.signals == []


def test_wake__signals_a_running_worker_only(keeper: Keeper) -> None:
    running, exited = ExitedProcess(code=None), ExitedProcess(code=0)

    keeper.process = running  # type: ignore[assignment]  # a stand-in Popen
    keeper.wake()
    keeper.process = exited  # type: ignore[assignment]  # a stand-in Popen
    keeper.wake()
    keeper.process = None
    keeper.wake()

    assert running.signals == [signal.SIGUSR1]
    assert exited.signals == []


def test_serves__its_backend_and_queues(keeper: Keeper) -> None:
    assert keeper.serves("default", "default") is True
    assert keeper.serves("default", "reports") is False
    assert keeper.serves("other", "default") is False
