"""The bench's tasks: one that does nothing, one that reports when it started."""

import time

from taskmill import task


@task
def noop() -> None:
    """Do nothing: the drain and enqueue figures measure Taskmill alone."""


@task
def record_start() -> float:
    """Return time.time() at the moment the task began (the pickup latency's end)."""
    return time.time()
