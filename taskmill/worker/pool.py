"""The pool's interface: the children that run tasks, the tasks each holds, what they report.

Two pools implement it: ForkPool (worker/fork_pool.py, the default: long-lived forked children,
each holding a few tasks) and SoloPool (worker/solo_pool.py: tasks run in the worker's own
process, for debuggers and test suites).
"""

from dataclasses import dataclass, field
from enum import StrEnum
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from ..context import ProgressReport
from ..models import TaskRecord
from ..outcomes import Outcome
from .capture import OutputCollector
from .frames import FrameReader
from .pipeline import Slot, Splitter
from .recording import Running

if TYPE_CHECKING:
    import select


@dataclass(eq=False, slots=True)
class Dispatched:
    """A task handed to a child: queued there, or running if it is the child's head."""

    seq: int  # dispatch order, also the marker of its output and its slot value
    task_id: UUID
    collector: OutputCollector
    alone: bool = False  # nothing may be queued behind it
    head_since: float | None = None  # when it became the first of its child's tasks (timeouts)


@dataclass(eq=False, slots=True)
class Child:
    """A slot of the pool: one process (or, in SoloPool, the worker itself)."""

    index: int
    pid: int = 0
    conn: Connection | None = None  # to the child, and (through reader) from it
    reader: FrameReader | None = None
    # Dispatched and not yet reported, in the order the child runs them.
    tasks: dict[int, Dispatched] = field(default_factory=dict)
    tasks_run: int = 0  # dispatched to it
    tasks_done: int = 0
    memory_checked_after: int = 0  # tasks_done when its memory was last read
    retiring: bool = False  # over its memory limit: gets nothing more, stops once empty
    kill_reason: str | None = None  # "timeout", "cancel", "shutdown" once a kill began
    kill_seq: int | None = None  # the task the kill is meant for
    kill_deadline: float | None = None  # when SIGTERM turns into SIGKILL
    exit_code: int | None = None
    stopping: bool = False
    sent: int = 0  # messages sent, for the slot's holds
    runs_seen: tuple[int, float] = (0, 0.0)  # the slot's run totals when last read
    slot: Slot | None = None
    output_fds: dict[int, str] = field(default_factory=dict)  # read end -> stream
    splitters: dict[int, Splitter] = field(default_factory=dict)  # read end -> its splitter
    # The output_fds, to read only those with data. Quoted: select.poll is a function at run
    # time, only a class to the type checker.
    output_poll: "select.poll | None" = None

    @property
    def head(self) -> Dispatched | None:
        return next(iter(self.tasks.values()), None)

    def find(self, task_id: UUID) -> Dispatched | None:
        return next((d for d in self.tasks.values() if d.task_id == task_id), None)

    def send(self, data: bytes) -> None:
        assert self.conn is not None  # noqa: S101 - live children always have a pipe
        self.sent += 1
        self.conn.send_bytes(data)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutcomeReceived:
    child: Child
    task_id: UUID
    outcome: Outcome
    # How long its child's recent attempts took to run, each (None: not measured).
    ran_for: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildExited:
    child: Child
    task_id: UUID | None  # the task it was running, if any
    exit_code: int
    kill_reason: str | None
    # Dispatched to it but never begun, in dispatch order: they had no side effects.
    unstarted: tuple[UUID, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ProgressReceived:
    task_id: UUID
    progress: ProgressReport


type PoolEvent = OutcomeReceived | ChildExited | ProgressReceived


class KillResult(StrEnum):
    KILLING = "killing"  # the task is running: its child is being killed
    # Queued in its child, now dropped from it: it will never begin there, so it may be
    # settled at once (the child reads the drop before it begins any other task).
    DROPPED = "dropped"
    NOT_STARTED = "not started"  # queued in its child, left there (a timeout waits)
    FINISHED = "finished"  # its child is past it: the outcome is on its way


class Pool(Protocol):
    supports_kill: bool

    def start(self) -> None: ...
    def idle_children(self) -> list[Child]: ...
    def find_child(self, task_id: UUID) -> Child | None: ...
    def rooms(self, depth: int, stalled_after: float | None) -> list[tuple[Child, int]]: ...
    def dispatch(self, child: Child, tasks: list[tuple[Running, bool]]) -> None: ...
    def new_heads(self) -> list[tuple[UUID, float]]: ...
    def kill(self, child: Child, task_id: UUID, reason: str, grace: float) -> KillResult: ...
    def drop_unstarted(self) -> list[UUID]: ...
    def take_back_stalled(self, now: float, after: float) -> list[UUID]: ...
    def poll_events(self) -> list[PoolEvent]: ...
    def announce_finished(self, records: list[TaskRecord]) -> None: ...
    def announce_recorded(self, finished: list[tuple[Running, dict[str, object]]]) -> None: ...
    def enforce_kills(self, now: float) -> None: ...
    def wait_handles(self) -> list[Connection | int]: ...
    def stop(self, grace: float) -> list[UUID]: ...
