"""Reading a child's output pipes, in the supervisor, into the collector of the task that
wrote each byte (split at the child's markers, worker/pipeline.py)."""

import contextlib
import fcntl
import os
from typing import Final

from ..models import LogStream
from .pool import Child

# Big pipes let a burst of output flow without waking the supervisor for every 64 KiB.
PIPE_SIZE: Final = 1024 * 1024
F_SETPIPE_SZ: Final = 1031  # Linux; fcntl names it only from Python 3.10 on some builds
READ_SIZE: Final = 1024 * 1024
# Per child and per poll: one child's flood of output mustn't hold up everything else.
READ_BUDGET: Final = 8 * READ_SIZE


def read_output(child: Child, budget: int | None = None) -> None:
    """Read what a child wrote, into the collector of the task that wrote it."""
    if child.output_poll is None:
        return
    # One poll() instead of a read() per pipe: this runs several times per task, and most
    # tasks write nothing. A pipe holding data, or whose writers are gone, shows as ready.
    for fd, _ in child.output_poll.poll(0):
        stream = child.output_fds.get(fd)
        if stream is None:
            continue
        taken = 0
        while budget is None or taken < budget:
            try:
                data = os.read(fd, READ_SIZE)
            except BlockingIOError:
                break
            if not data:  # every write end closed: the child is gone
                del child.output_fds[fd]
                child.output_poll.unregister(fd)
                os.close(fd)
                _deliver(child, stream, *child.splitters.pop(fd).flush())
                break
            taken += len(data)
            for seq, part in child.splitters[fd].split(data):
                _deliver(child, stream, seq, part)


def _deliver(child: Child, stream: str, seq: int | None, data: bytes) -> None:
    if not data:
        return
    dispatched = child.tasks.get(seq) if seq is not None else None
    if dispatched is not None:
        dispatched.collector.feed(stream, data)
    else:
        _pass_through(stream, data)


def close_output(child: Child) -> None:
    """Close a gone child's pipes; bytes held back for a marker that never came are output."""
    for fd, splitter in child.splitters.items():
        _deliver(child, child.output_fds.get(fd, LogStream.STDOUT), *splitter.flush())
    for fd in child.output_fds:
        os.close(fd)
    child.output_fds = {}
    child.splitters = {}
    child.output_poll = None


def output_pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(read, False)
    with contextlib.suppress(OSError):  # the system's limit may be lower; the default works
        fcntl.fcntl(read, F_SETPIPE_SZ, PIPE_SIZE)
    return read, write


def _pass_through(stream: str, data: bytes) -> None:
    # Output between tasks (a child's own messages, a task's leftover subprocess) isn't any
    # task's: it goes to the worker's console rather than nowhere.
    with contextlib.suppress(OSError):
        os.write(1 if stream == LogStream.STDOUT else 2, data)
