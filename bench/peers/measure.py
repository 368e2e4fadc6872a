"""The workloads, run the same way against every peer (see bench/catalogue.py for Taskmill's):
single enqueue, bulk enqueue, drain, pickup latency and idle cost. Peers venv, stdlib only."""

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from .. import processes
from .harness import (
    TASK_TIMEOUT,
    PeerWorker,
    Workload,
    clear_marks,
    figure,
    percentile,
    rate,
    running_worker,
    say,
    wait_for_marks,
    worker_env,
)

READY_TIMEOUT: Final = 60.0


class Peer(ABC):
    """One peer, driven the standard way its documentation shows."""

    name: str
    versions: dict[str, str]
    settings: str  # what is not the peer's default, and why: shown in the JSON

    @abstractmethod
    def enqueue(self, tag: str) -> None:
        """Enqueue one no-op task carrying `tag`, the peer's ordinary single-task call."""

    def enqueue_bulk(self, tags: Sequence[str]) -> bool:
        """Enqueue many in one call if the peer has one; return False if it has none."""
        return False

    @abstractmethod
    def flush(self) -> None:
        """Empty the queue (and anything a worker left), so each run starts alike."""

    @abstractmethod
    def worker_command(self, concurrency: int) -> list[str]:
        """The peer's own worker command with `concurrency` concurrent tasks."""

    def worker_env(self) -> dict[str, str]:
        return {}

    def close(self) -> None:  # noqa: B027 - a hook: a peer without connections does nothing
        """Release connections; drop what the peer created."""


def measure(peer: Peer, workload: Workload, marks: Path) -> dict[str, Any]:
    """Run every workload against the peer; return the figures, keyed as Taskmill's are."""
    figures: dict[str, Any] = {}
    figures.update(_single_enqueue(peer, workload))
    figures.update(_bulk_enqueue(peer, workload))
    figures.update(_drain(peer, workload, marks))
    figures.update(_pickup_and_idle(peer, workload, marks))
    peer.flush()
    return figures


def _single_enqueue(peer: Peer, workload: Workload) -> dict[str, Any]:
    rates = []
    for _ in range(workload.repeats):
        peer.flush()
        rates.append(rate(workload.single_enqueues, lambda: peer.enqueue("e")))
    return {"enqueue_single": figure(rates, "tasks/s")}


def _bulk_enqueue(peer: Peer, workload: Workload) -> dict[str, Any]:
    rates = []
    tags = ["b"] * workload.bulk_enqueues
    for _ in range(workload.repeats):
        peer.flush()
        start = time.perf_counter()
        if not peer.enqueue_bulk(tags):
            return {}
        rates.append(len(tags) / (time.perf_counter() - start))
    return {"enqueue_many": figure(rates, "tasks/s")}


def _drain(peer: Peer, workload: Workload, marks: Path) -> dict[str, Any]:
    wall_rates, span_rates = [], []
    count = workload.drain_tasks
    tags = [f"d{index}" for index in range(count)]
    for _ in range(workload.repeats):
        peer.flush()
        clear_marks(marks)
        if not peer.enqueue_bulk(tags):
            for tag in tags:
                peer.enqueue(tag)
        with _worker(peer, workload, marks) as worker:
            done = wait_for_marks(
                marks, count, max(60.0, count / 20), f"{count} tasks drained", worker
            )
        last = max(mark.finished for mark in done)
        wall_rates.append(count / (last - worker.started_wall))
        span_rates.append(count / (last - min(mark.started for mark in done)))
    return {
        "drain_wall": figure(wall_rates, "tasks/s"),
        "drain_span": figure(span_rates, "tasks/s"),
    }


def _pickup_and_idle(peer: Peer, workload: Workload, marks: Path) -> dict[str, Any]:
    peer.flush()
    clear_marks(marks)
    latencies = []
    with _worker(peer, workload, marks) as worker:
        # Ready = it ran a first task; then let it go idle, as Taskmill's worker is left to.
        peer.enqueue("warmup")
        wait_for_marks(marks, 1, READY_TIMEOUT, "the worker to run a first task", worker)
        time.sleep(workload.settle_seconds)
        for index in range(workload.latency_samples):
            clear_marks(marks)
            before = time.time()
            peer.enqueue(f"p{index}")
            (mark,) = wait_for_marks(marks, 1, TASK_TIMEOUT, f"latency task {index}", worker)
            latencies.append((mark.started - before) * 1000)
            time.sleep(workload.latency_spacing * random.uniform(0.75, 1.25))  # noqa: S311
        time.sleep(workload.settle_seconds)
        cpu = _idle_cpu(worker, workload.idle_seconds)
    return {
        "pickup_p50": figure([percentile(latencies, 50)], "ms"),
        "pickup_p95": figure([percentile(latencies, 95)], "ms"),
        "pickup_max": figure([max(latencies)], "ms"),
        "idle_cpu": figure([cpu], "%"),
    }


def _idle_cpu(worker: PeerWorker, seconds: float) -> float:
    """CPU % of one core used by the worker's processes over `seconds`, as for Taskmill's."""
    tree = processes.process_tree(worker.popen.pid)
    before, wall = processes.cpu_seconds(tree), time.monotonic()
    time.sleep(seconds)
    return (processes.cpu_seconds(tree) - before) / (time.monotonic() - wall) * 100


@contextmanager
def _worker(peer: Peer, workload: Workload, marks: Path) -> Iterator[PeerWorker]:
    """Start the peer's worker with the workload's concurrency; show its log if a step fails."""
    log = marks.parent / f"{peer.name}-worker-{time.time_ns()}.log"
    command = peer.worker_command(workload.concurrency)
    with running_worker(command, worker_env(marks, **peer.worker_env()), log) as worker:
        try:
            yield worker
        except Exception:
            say(peer.name, f"worker log:\n{worker.log_tail()}")
            raise
