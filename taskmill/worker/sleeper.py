"""Where the supervisor waits between steps: its children's pipes, the pipe signal handlers
write to, and the queue's waiter (LISTEN on PostgreSQL, a watch of the WAL file and PRAGMA
data_version on SQLite).

SIGUSR1 means "work may be there" (sent by the autostart process after an enqueue commits):
it wakes the sleep as news, on every database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection, wait
from typing import Final

from ..exceptions import QueueError
from ..queue.base import Queue
from ..queue.waiter import Waiter

logger = logging.getLogger("taskmill.worker")

WAKE_SIGNAL: Final = signal.SIGUSR1


class Wake(StrEnum):
    TIMEOUT = "timeout"
    SIGNAL = "signal"  # a signal arrived; its handler already set the supervisor's state
    NEWS = "news"  # work may have arrived (a notification, a commit), or a cancel request
    LATER = "later"  # news of work due later only (take_later() says when)
    CHILD = "child"  # a child reported


@dataclass(eq=False)
class Sleeper:
    queue: Queue
    waiter: Waiter | None = None
    wakeup_read: int | None = None
    later: list[tuple[str, float]] = field(default_factory=list)  # see take_later()

    def open_waiter_if_needed(self) -> None:
        """Open the queue's waiter (again, after it was lost); raises database errors."""
        if self.waiter is None:
            self.waiter = self.queue.open_waiter()

    @property
    def pushes_news(self) -> bool:
        """Whether news of work wakes the sleep (else only a claim finds it)."""
        return self.waiter is not None and self.waiter.pushes

    def close_waiter(self) -> None:
        if self.waiter is not None:
            with contextlib.suppress(Exception):
                self.waiter.close()
            self.waiter = None

    def sleep(self, timeout: float, children: Sequence[Connection | int]) -> Wake:
        """Wait up to timeout seconds; return what ended the wait."""
        waiter_fd = self.waiter.fileno() if self.waiter is not None else None
        if self.waiter is not None:
            self.waiter.forget_news()
        end = time.monotonic() + timeout
        # One selector for the whole sleep: the SQLite waiter checks every few milliseconds,
        # and building a selector per check is what an idle worker would spend its CPU on.
        with selectors.DefaultSelector() as selector:
            for handle in [*children, self.wakeup_read, waiter_fd]:
                if handle is not None:
                    selector.register(handle, selectors.EVENT_READ)
            first_turn = True
            while (remaining := end - time.monotonic()) > 0:
                # Per turn: the SQLite waiter looks again sooner after a write (its docs).
                step = self.waiter.check_interval if self.waiter is not None else None
                # A waiter that checks looks at once: news from before the sleep counts.
                wait = 0.0 if first_turn and step else min(remaining, step) if step else remaining
                first_turn = False
                events = selector.select(wait)
                ready = {key.fileobj for key, _ in events}
                if self.wakeup_read is not None and self.wakeup_read in ready:
                    received = self._drain_wakeup()
                    return Wake.SIGNAL if received - {WAKE_SIGNAL} else Wake.NEWS
                if step or waiter_fd in ready:
                    if self._waiter_has_news():
                        return Wake.NEWS
                    if self.later:
                        return Wake.LATER
                if ready - {waiter_fd}:
                    return Wake.CHILD
        return Wake.TIMEOUT

    def take_later(self) -> list[tuple[str, float]]:
        """Return and forget the news of work due later the waiter brought: (queue name, due
        time as a Unix time)."""
        later, self.later = self.later, []
        return later

    def sleep_until_signal(self, seconds: float) -> None:
        """Wait, waking early only for a signal other than a wake-up (the reconnect backoff)."""
        if self.wakeup_read is None:
            time.sleep(seconds)
            return
        end = time.monotonic() + seconds
        while (remaining := end - time.monotonic()) > 0:
            if wait([self.wakeup_read], timeout=remaining) and self._drain_wakeup() - {WAKE_SIGNAL}:
                return

    def _waiter_has_news(self) -> bool:
        if self.waiter is None:
            return False
        try:
            news = self.waiter.check()
            self.later += self.waiter.take_later()
            return news
        except QueueError as error:
            # Polling goes on; the supervisor opens a new waiter once the database answers.
            logger.warning("wake-up channel lost, polling until it is back: %s", error)
            self.close_waiter()
            return True

    def _drain_wakeup(self) -> set[int]:
        """Empty the wake-up pipe; return the numbers of the signals that arrived."""
        assert self.wakeup_read is not None  # noqa: S101 - callers checked
        with contextlib.suppress(BlockingIOError):
            return set(os.read(self.wakeup_read, 512))
        return set()

    def install_signal_handlers(self, on_stop: Callable[[], None]) -> Callable[[], None]:
        """Route SIGTERM/SIGINT to on_stop and wake sleep() through a pipe, for them and for
        WAKE_SIGNAL (news).

        Return a function that puts the previous handlers back.
        """
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self.wakeup_read = read
        previous_fd = signal.set_wakeup_fd(write)
        previous = {
            signum: signal.signal(signum, lambda s, f: on_stop())
            for signum in (signal.SIGTERM, signal.SIGINT)
        }
        # The handler does nothing: the byte set_wakeup_fd writes for the signal is the news.
        previous[WAKE_SIGNAL] = signal.signal(WAKE_SIGNAL, lambda s, f: None)

        def restore() -> None:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            signal.set_wakeup_fd(previous_fd)
            os.close(read)
            os.close(write)
            self.wakeup_read = None

        return restore
