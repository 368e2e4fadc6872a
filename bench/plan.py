"""How much each measurement does: the default plan (~5 minutes) and a quick smoke plan."""

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    repeats: int  # runs of each rate measurement; the table shows their median
    single_enqueues: int  # task.enqueue() calls (and bare INSERTs) per run
    bulk_enqueues: int  # tasks per enqueue_many() call
    drain_tasks: int  # no-op tasks a burst worker drains per run
    concurrency: int  # the worker's --concurrency
    latency_samples: int  # tasks enqueued one at a time into an idle worker
    latency_spacing: float  # seconds between one task finishing and the next enqueue
    after_task_seconds: float  # the window right after a task, while the worker looks often
    settle_seconds: float  # idle time before sampling, so the worker's polling has backed off
    idle_seconds: float  # the window idle CPU is measured over

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_PLAN = Plan(
    repeats=3,
    single_enqueues=500,
    bulk_enqueues=10_000,
    drain_tasks=2000,
    concurrency=2,
    latency_samples=200,
    latency_spacing=0.02,
    after_task_seconds=2.0,
    settle_seconds=2.5,
    idle_seconds=10.0,
)

QUICK_PLAN = Plan(
    repeats=1,
    single_enqueues=50,
    bulk_enqueues=500,
    drain_tasks=100,
    concurrency=2,
    latency_samples=10,
    latency_spacing=0.02,
    after_task_seconds=1.0,
    settle_seconds=0.5,
    idle_seconds=1.0,
)
