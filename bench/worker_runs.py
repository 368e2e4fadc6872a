"""Measurements with a real worker process: drain throughput, pickup latency, idle cost."""

import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from django.db.models import Max, Min

from taskmill import enqueue_many
from taskmill.models import TaskRecord
from taskmill.models import Worker as WorkerRow
from taskmill.states import FINISHED_STATES, State

from . import processes
from .catalogue import Figure, figure
from .enqueue import flush_queue
from .plan import Plan
from .tasks import noop, record_start

READY_TIMEOUT: Final = 60.0
TASK_TIMEOUT: Final = 10.0
POLL: Final = 0.005


class BenchError(Exception):
    """A measurement could not be made (a worker failed, a task didn't finish)."""


def _worker_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(processes.REPO_ROOT), env.get("PYTHONPATH")])
    )
    env["PYTHONUNBUFFERED"] = "1"
    return env


@contextmanager
def running_worker(args: list[str], log_dir: Path) -> Iterator[processes.Worker]:
    """Start a worker; stop it and every process it started on the way out, however left."""
    log_path = log_dir / f"worker-{time.time_ns()}.log"
    worker = processes.start_worker(args, env=_worker_env(), log_path=log_path)
    try:
        yield worker
    finally:
        processes.stop_worker(worker)


def _wait_for[T](predicate: Callable[[], T], timeout: float, what: str, interval: float) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def measure_drain(plan: Plan, log_dir: Path) -> dict[str, Figure]:
    """Time a burst worker draining plan.drain_tasks no-op tasks, run after run.

    drain_wall runs from the worker's start to the last task's finish, as the peers' drain
    does (bench/peers/measure.py); drain_exit goes on to the burst worker's exit.
    """
    wall_rates, span_rates, exit_rates = [], [], []
    args = ["--concurrency", str(plan.concurrency), "--burst"]
    deadline = max(60.0, plan.drain_tasks / 20)
    for _ in range(plan.repeats):
        flush_queue()
        enqueue_many(noop, [((), {})] * plan.drain_tasks)
        with running_worker(args, log_dir) as worker:
            code = worker.popen.wait(deadline)
            to_exit = time.monotonic() - worker.started
            if code != 0:
                raise BenchError(f"burst worker exited {code}:\n{worker.log_tail()}")
        done = TaskRecord.objects.filter(state=State.SUCCEEDED)
        if done.count() != plan.drain_tasks:
            raise BenchError(
                f"burst worker exited with {done.count()} of {plan.drain_tasks} tasks succeeded"
            )
        times = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
        span = (times["last"] - times["first"]).total_seconds()
        wall_rates.append(plan.drain_tasks / (times["last"].timestamp() - worker.started_wall))
        span_rates.append(plan.drain_tasks / span)
        exit_rates.append(plan.drain_tasks / to_exit)
    flush_queue()
    return {
        "drain_wall": figure(wall_rates, "tasks/s"),
        "drain_span": figure(span_rates, "tasks/s"),
        "drain_exit": figure(exit_rates, "tasks/s"),
    }


def measure_idle_worker(plan: Plan, log_dir: Path) -> tuple[dict[str, Figure], dict[str, Any]]:
    """Sample pickup latency of an idle worker, then its CPU and memory while idle.

    Return the figures and details (every latency, the worker's start-up time).
    """
    flush_queue()
    with running_worker(["--concurrency", str(plan.concurrency)], log_dir) as worker:
        _wait_for(
            lambda: worker.popen.poll() is not None or WorkerRow.objects.exists(),
            READY_TIMEOUT,
            "the worker to register",
            interval=0.02,
        )
        if worker.popen.poll() is not None:
            raise BenchError(f"worker exited {worker.popen.returncode}:\n{worker.log_tail()}")
        ready_after = time.monotonic() - worker.started
        time.sleep(plan.settle_seconds)
        pickups = _sample_pickup(plan)
        after_task_cpu, _, _ = _idle_cost(worker.pid, plan.after_task_seconds)
        time.sleep(plan.settle_seconds)
        cpu, rss, pss = _idle_cost(worker.pid, plan.idle_seconds)
    flush_queue()
    ordered = sorted(pickup.total_ms for pickup in pickups)
    figures = {
        "pickup_p50": figure([_percentile(ordered, 50)], "ms"),
        "pickup_p95": figure([_percentile(ordered, 95)], "ms"),
        "pickup_max": figure([ordered[-1]], "ms"),
        "pickup_wake_p50": figure([statistics.median(p.wake_ms for p in pickups)], "ms"),
        "pickup_claim_p50": figure([statistics.median(p.claim_ms for p in pickups)], "ms"),
        "after_task_cpu": figure([after_task_cpu], "%"),
        "idle_cpu": figure([cpu], "%"),
        "idle_rss": figure([rss], "MB"),
        "idle_pss": figure([pss], "MB"),
    }
    details = {
        "worker_ready_s": round(ready_after, 3),
        "pickup_mean_ms": statistics.fmean(ordered),
        "pickup_latencies_ms": [round(pickup.total_ms, 3) for pickup in pickups],
    }
    return figures, details


@dataclass(frozen=True, slots=True, kw_only=True)
class Pickup:
    """One latency sample, split at the moment the worker began the claim (the row's
    started_at, stamped by the supervisor just before its claim query)."""

    total_ms: float  # enqueue call -> task function starts
    wake_ms: float  # enqueue call -> claim begins: the INSERT, the wake-up, the loop
    claim_ms: float  # claim begins -> task function starts: claim, dispatch, child


def _sample_pickup(plan: Plan) -> list[Pickup]:
    """Enqueue record_start tasks one at a time into the idle worker; time each pickup."""
    enqueued_at: dict[str, float] = {}
    for _ in range(plan.latency_samples):
        before = time.time()
        result = record_start.enqueue()
        enqueued_at[result.id] = before
        # Wait for it to finish, so the next task finds the worker idle again; the poll's
        # interval doesn't affect the figure, which comes from the task's own clock.
        finished = TaskRecord.objects.filter(id=result.id, state__in=FINISHED_STATES)
        _wait_for(finished.exists, TASK_TIMEOUT, f"task {result.id} to finish", interval=POLL)
        time.sleep(plan.latency_spacing * random.uniform(0.75, 1.25))  # noqa: S311 - jitter
    rows = TaskRecord.objects.filter(id__in=list(enqueued_at)).values_list(
        "id", "state", "started_at", "return_value"
    )
    samples = []
    for task_id, state, claim_began, task_began in rows:
        if state != State.SUCCEEDED or claim_began is None or task_began is None:
            raise BenchError(f"latency task {task_id} ended {state}")
        called = enqueued_at[str(task_id)]
        samples.append(
            Pickup(
                total_ms=(float(task_began) - called) * 1000,
                wake_ms=(claim_began.timestamp() - called) * 1000,
                claim_ms=(float(task_began) - claim_began.timestamp()) * 1000,
            )
        )
    return samples


def _idle_cost(pid: int, seconds: float) -> tuple[float, float, float]:
    """Return CPU % of one core over `seconds`, and RSS and PSS in MB, of the worker's tree."""
    tree = processes.process_tree(pid)
    cpu_before, wall_before = processes.cpu_seconds(tree), time.monotonic()
    time.sleep(seconds)
    cpu_after, wall_after = processes.cpu_seconds(tree), time.monotonic()
    if processes.process_tree(pid) != tree:
        raise BenchError("the worker's processes changed while it was idle")
    percent = (cpu_after - cpu_before) / (wall_after - wall_before) * 100
    return percent, processes.memory_mb(tree, "VmRSS"), processes.memory_mb(tree, "Pss")


def _percentile(ordered: list[float], percent: float) -> float:
    """Nearest-rank percentile of sorted values."""
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]
