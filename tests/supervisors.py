"""A worker's Supervisor built in the test process, to drive its steps one at a time."""

from taskmill.worker.setup import build_options
from taskmill.worker.supervisor import Supervisor


def supervisor_in_process(pool: str, queues: list[str] | None = None) -> Supervisor:
    """A long-running (not burst) supervisor of one slot on the default backend, serving its
    queues (all of them by default); its pool's children, if any, start only when its run()
    does."""
    return Supervisor(
        build_options(
            backend_alias="default",
            queues=queues,
            concurrency=1,
            max_tasks_per_child=None,
            burst=False,
            grace=30.0,
            pool=pool,
        )
    )
