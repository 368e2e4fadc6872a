"""Keeper: a thread of the web server process that holds the database's autostart lock and,
while it does, keeps one worker process running: `python -m django taskmill worker` with this
server's settings, restarted with backoff when it dies, stopped when the server exits.

The worker dies with the server however the server ends: SIGTERM and a wait at a normal exit
(atexit), and the kernel's parent-death signal (or the worker's watchdog) when it is killed.
Servers that lose the race for the lock stand by and try again every LEASE_SECONDS / 2.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import threading
import time
from typing import Final

from django.apps import apps
from django.core.management.base import CommandError
from django.db import DatabaseError, InterfaceError, connections

from ..conf import TaskmillSettings, get_settings
from ..exceptions import ConfigurationError, QueueError
from ..queue import get_queue
from ..queue.session_lock import SessionLock
from .plan import WORKER_GRACE, Plan, build_plan, worker_environment

logger = logging.getLogger("taskmill.autostart")

LOCK_NAME: Final = "autostart"
RESTART_MIN: Final = 1.0
RESTART_MAX: Final = 60.0
STABLE_AFTER: Final = 60.0  # a worker that ran this long is restarted after RESTART_MIN again
TICK: Final = 1.0  # how often the keeper looks at its worker process
STOP_TIMEOUT: Final = WORKER_GRACE + 5.0  # then SIGKILL

_keeper: Keeper | None = None
_keeper_lock = threading.Lock()


class Keeper:
    """Hold the autostart lock and keep a worker process running under it."""

    def __init__(self, settings: TaskmillSettings) -> None:
        self.settings = settings
        self.owner_pid = os.getpid()
        self.plan: Plan | None = None
        self.lock: SessionLock | None = None
        self.holding = False
        self.migrated = False
        self.warned_unmigrated = False
        self.announced_standby = False
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restart_delay = RESTART_MIN
        self.next_lock_at = 0.0
        self.next_migration_check_at = 0.0
        self.next_start_at = 0.0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="taskmill-autostart", daemon=True)

    # -- Lifecycle, from the server's threads -------------------------------------------------

    def start(self) -> None:
        self.thread.start()
        atexit.register(self.stop)

    def stop(self) -> None:
        """Stop the worker (SIGTERM, SIGKILL after STOP_TIMEOUT) and the keeper; wait for both."""
        if os.getpid() != self.owner_pid:
            return  # a forked copy of the server (gunicorn --preload): not ours to stop
        self.stopping.set()
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(STOP_TIMEOUT + 2)

    def wake(self) -> None:
        """Tell the worker to look for tasks now (after an enqueue committed)."""
        process = self.process
        if process is not None and process.returncode is None:
            # send_signal does nothing once the process is reaped, so the pid can't be reused.
            process.send_signal(signal.SIGUSR1)

    def serves(self, backend_alias: str, queue_name: str) -> bool:
        """Return True if this keeper's worker runs tasks of this backend and queue."""
        plan = self.plan
        return (
            plan is not None
            and plan.backend_alias == backend_alias
            and (queue_name in plan.queue_names)
        )

    # -- The keeper's thread -----------------------------------------------------------------

    def run(self) -> None:
        apps.ready_event.wait()
        try:
            self.plan = build_plan(self.settings)
            self.lock = get_queue(self.plan.database_alias).open_session_lock(
                LOCK_NAME, idle_timeout=self.settings.LEASE_SECONDS * 2
            )
        except (CommandError, ConfigurationError) as error:
            logger.error("taskmill autostart: no worker started: %s", error)
            return
        try:
            while not self.stopping.is_set():
                self.run_once(time.monotonic())
                self.stopping.wait(self._time_to_next_step())
        except Exception:
            logger.exception("taskmill autostart: the keeper failed; stopping its worker")
        finally:
            self._stop_worker()
            self._release_lock()

    def run_once(self, now: float) -> None:
        """Do every step that is due; database errors only postpone them."""
        try:
            self._hold_lock_if_due(now)
            self._check_migrated_if_due(now)
        except (DatabaseError, InterfaceError, QueueError) as error:
            logger.warning("taskmill autostart: database unavailable, retrying: %s", error)
            self.next_lock_at = self.next_migration_check_at = now + self._standby_interval
        finally:
            connections.close_all()  # this thread's connections; the lock has its own
        self._reap_worker(now)
        self._start_worker_if_due(now)

    @property
    def _standby_interval(self) -> float:
        return self.settings.LEASE_SECONDS / 2

    def _hold_lock_if_due(self, now: float) -> None:
        if now < self.next_lock_at:
            return
        assert self.plan is not None  # noqa: S101 - set by run()
        assert self.lock is not None  # noqa: S101 - set by run()
        if self.holding:
            self.next_lock_at = now + self.settings.HEARTBEAT_SECONDS
            if not self.lock.is_held():
                logger.warning("taskmill autostart: lost the autostart lock; stopping the worker")
                self.holding = False
                self._stop_worker()
                self.next_lock_at = now
            return
        self.holding = self.lock.try_acquire()
        if self.holding:
            logger.info("taskmill autostart: this process runs the worker pid=%s", os.getpid())
            self.next_lock_at = now + self.settings.HEARTBEAT_SECONDS
            self.next_migration_check_at = now
        else:
            self.next_lock_at = now + self._standby_interval
            if not self.announced_standby:
                self.announced_standby = True
                logger.info(
                    "taskmill autostart: another process runs the worker for database %r; "
                    "standing by pid=%s",
                    self.plan.database_alias,
                    os.getpid(),
                )

    def _check_migrated_if_due(self, now: float) -> None:
        if not self.holding or self.migrated or now < self.next_migration_check_at:
            return
        from ..worker.schema import missing_migrations

        assert self.plan is not None  # noqa: S101 - set before the loop
        missing = missing_migrations(self.plan.database_alias)
        self.migrated = not missing
        self.next_migration_check_at = now + self._standby_interval
        if missing and not self.warned_unmigrated:
            # One line, then silence: the keeper looks again now and then, and starts the
            # worker once `migrate` has run.
            self.warned_unmigrated = True
            logger.warning(
                "taskmill autostart: database %r not migrated (missing: %s); run manage.py "
                "migrate. The worker starts once it is.",
                self.plan.database_alias,
                ", ".join(missing),
            )

    def _reap_worker(self, now: float) -> None:
        if self.process is None or self.process.poll() is None:
            return
        code = self.process.returncode
        ran = now - self.started_at
        self.process = None
        if ran >= STABLE_AFTER:
            self.restart_delay = RESTART_MIN
        logger.warning(
            "taskmill autostart: worker exited code=%s after %.0f s; restarting in %.0f s",
            code,
            ran,
            self.restart_delay,
        )
        self.next_start_at = now + self.restart_delay
        self.restart_delay = min(self.restart_delay * 2, RESTART_MAX)

    def _start_worker_if_due(self, now: float) -> None:
        if not (self.holding and self.migrated) or self.process is not None:
            return
        if now < self.next_start_at or self.stopping.is_set():
            return
        assert self.plan is not None  # noqa: S101 - set before the loop
        # Spawned from this thread: the parent-death signal follows the thread that forked.
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            self.plan.command(os.getpid()),
            env=worker_environment(),
            stdin=subprocess.DEVNULL,
            # A session of its own: a Ctrl-C in the server's terminal reaches the server, which
            # stops the worker once; the worker must not get it too (twice means "at once").
            start_new_session=True,
        )
        self.started_at = now
        logger.info(
            "taskmill autostart: worker started pid=%s queues=%s concurrency=%s",
            self.process.pid,
            ",".join(self.plan.queue_names),
            self.plan.concurrency,
        )

    def _time_to_next_step(self) -> float:
        now = time.monotonic()
        until = min(now + TICK, self.next_lock_at)
        if self.holding and not self.migrated:
            until = min(until, self.next_migration_check_at)
        if self.holding and self.migrated and self.process is None:
            until = min(until, self.next_start_at)
        return max(0.0, until - now)

    def _stop_worker(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            logger.warning(
                "taskmill autostart: worker pid=%s ignored SIGTERM; killing", process.pid
            )
            process.kill()
            process.wait()

    def _release_lock(self) -> None:
        if self.lock is not None:
            self.lock.release()
        self.holding = False


def current_keeper() -> Keeper | None:
    """The keeper started in this process, if any."""
    return _keeper


def start() -> Keeper:
    """Start the autostart keeper in this process (once); return it.

    Called for runserver and WSGI/ASGI servers automatically; call it from wsgi.py or asgi.py
    when a server sets Django up in a way autostart can't see.
    """
    global _keeper  # one keeper per process, by design
    with _keeper_lock:
        if _keeper is None:
            from .wakeup import connect_wakeup

            _keeper = Keeper(get_settings())
            _keeper.start()
            connect_wakeup()
        return _keeper


def _forget_keeper_in_child() -> None:
    # A fork of the server (gunicorn --preload) doesn't have the keeper's thread. The copy is
    # kept referenced, never closed: closing its lock would end the parent's database session.
    global _keeper
    if _keeper is not None:
        _forked_copies.append(_keeper)
        _keeper = None


_forked_copies: list[Keeper] = []
os.register_at_fork(after_in_child=_forget_keeper_in_child)
