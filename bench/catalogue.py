"""Every figure the bench reports, in table order: key, label and unit. The one list that the
suite fills, the table prints and the JSON holds."""

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median
from typing import Any, Final

from .plan import Plan

type Figure = dict[str, Any]  # {"value": float, "unit": str, "samples": [float, ...]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Measurement:
    key: str
    label: str
    unit: str
    digits: int  # decimals shown in the table


MEASUREMENTS: Final = (
    Measurement(key="enqueue_single", label="task.enqueue(), autocommit", unit="tasks/s", digits=0),
    Measurement(key="insert_floor", label="bare single-row INSERT", unit="rows/s", digits=0),
    Measurement(key="enqueue_vs_insert", label="enqueue / INSERT", unit="ratio", digits=2),
    Measurement(key="enqueue_many", label="enqueue_many", unit="tasks/s", digits=0),
    Measurement(
        key="drain_wall", label="drain, worker start to last finish", unit="tasks/s", digits=0
    ),
    Measurement(
        key="drain_span", label="drain, first start to last finish", unit="tasks/s", digits=0
    ),
    Measurement(
        key="drain_exit", label="drain, worker start to exit (--burst)", unit="tasks/s", digits=0
    ),
    Measurement(key="pickup_p50", label="pickup latency p50", unit="ms", digits=1),
    Measurement(key="pickup_p95", label="pickup latency p95", unit="ms", digits=1),
    Measurement(key="pickup_max", label="pickup latency max", unit="ms", digits=1),
    Measurement(
        key="pickup_wake_p50", label="  p50 of: enqueue call to claim begins", unit="ms", digits=1
    ),
    Measurement(
        key="pickup_claim_p50", label="  p50 of: claim begins to task starts", unit="ms", digits=1
    ),
    Measurement(key="after_task_cpu", label="worker CPU right after a task", unit="%", digits=2),
    Measurement(key="idle_cpu", label="idle worker CPU", unit="%", digits=2),
    Measurement(key="idle_rss", label="idle worker RSS (sum of VmRSS)", unit="MB", digits=1),
    Measurement(key="idle_pss", label="idle worker PSS (shared pages split)", unit="MB", digits=1),
)
KEYS: Final = tuple(m.key for m in MEASUREMENTS)
# The figures the peer runners (bench/peers/measure.py) measure the same way, so the table
# prints a Taskmill / peer ratio under each.
PEER_KEYS: Final = (
    "enqueue_single",
    "enqueue_many",
    "drain_wall",
    "drain_span",
    "pickup_p50",
    "pickup_p95",
    "pickup_max",
    "idle_cpu",
)


def figure(samples: Sequence[float], unit: str) -> Figure:
    """Summarise repeated runs of one measurement by their median."""
    return {"value": median(samples), "unit": unit, "samples": list(samples)}


def describe(plan: Plan) -> dict[str, str]:
    """Say, per measurement, what workload produced it (shown under the table)."""
    runs = f"median of {plan.repeats} run(s)"
    worker = f"one worker, --concurrency {plan.concurrency}"
    return {
        "enqueue_single": f"{plan.single_enqueues:,} calls per run, {runs}",
        "insert_floor": "same connection, same table and row (fresh id and times, as enqueue "
        "writes), raw cursor.execute()",
        "enqueue_many": f"{plan.bulk_enqueues:,} tasks per call, {runs}",
        "drain_wall": f"{plan.drain_tasks:,} no-op tasks, {worker} --burst, {runs}; "
        "timed from the worker's start, as for the peers",
        "drain_exit": "the same runs, timed to the burst worker's exit (stopping its children, "
        "deregistering); the peers have no such mode",
        "pickup_p50": (
            f"{plan.latency_samples} tasks one at a time, {worker}, each enqueued "
            f"~{plan.latency_spacing * 1000:g} ms after the previous one finished; "
            "task start minus enqueue call"
        ),
        "pickup_wake_p50": "split at the row's started_at, stamped just before the claim query",
        "after_task_cpu": (
            f"supervisor + children over the {plan.after_task_seconds:g} s after the last "
            "pickup task finished (without a pushed wake-up, the worker looks for work every "
            "0.02 s for 2 s after finding some)"
        ),
        "idle_cpu": (
            f"supervisor + children over {plan.idle_seconds:g} s, % of one core, "
            f"after {plan.settle_seconds:g} s idle"
        ),
        "idle_rss": "VmRSS counts pages the forked children share with the supervisor once "
        "per process; PSS splits them",
    }
