"""What a worker was started with (`taskmill worker`'s options), and its id."""

import os
import random
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    backend_alias: str
    database_alias: str
    queue_names: tuple[str, ...]
    concurrency: int
    max_tasks_per_child: int | None = None
    max_memory_per_child: int | None = None  # bytes of resident memory after a task
    burst: bool = False
    grace: float = 30.0
    solo: bool = False
    # Tasks claimed ahead of free slots while the queue is busy; None adapts it to how long
    # tasks take (see claim_ahead.py).
    prefetch: int | None = 0
    # Tasks a child may hold (the one it runs and those queued behind it); None adapts it to
    # how long tasks take (see pipeline.py).
    pipeline_depth: int | None = None


def new_worker_id() -> str:
    host = socket.gethostname()[:40]
    return f"{host}:{os.getpid()}:{random.randbytes(3).hex()}"  # noqa: S311 - an id, not a secret
