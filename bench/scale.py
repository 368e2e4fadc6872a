"""Scale: does claiming stay flat as the table fills with finished tasks, and after many
tasks have churned through it (dead rows on PostgreSQL)?

`python -m bench.scale --out FILE [--quick]`, run by `python -m bench` like bench.suite (a
process of its own, DJANGO_SETTINGS_MODULE=bench.settings, a fresh database). At each step
it fills the table up to the step's number of finished rows (bench.admin_scale.fill: one
INSERT ... SELECT on PostgreSQL, bulk_create elsewhere), then measures:

- claim latency: one ready task enqueued, claimed alone through the queue's claim() (the
  worker's own call), timed, then marked finished; p50 and p95 over many;
- drain rate: a burst worker (--concurrency 2) drains a short batch of no-op tasks, first
  start to last finish.

Then `churn_tasks` no-op tasks go through a real worker (--concurrency 2, not --burst, so
its leader duties run as in production: two row versions left behind per task on
PostgreSQL, and whatever vacuuming the worker does), and the same is measured again right
after it stopped, before autovacuum's next round could tidy up.
"""

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any, Final

import django

BATCH: Final = 10_000
CHURN_POLL: Final = 0.2


@dataclass(frozen=True, slots=True, kw_only=True)
class ScalePlan:
    steps: dict[str, tuple[int, ...]]  # finished rows in the table at each step, per vendor
    claim_samples: int  # claims timed at each step
    drain_tasks: int  # no-op tasks drained at each step
    churn_tasks: int  # tasks put through the queue before the last measurement

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


DEFAULT_SCALE = ScalePlan(
    steps={
        "postgresql": (0, 10_000, 100_000, 1_000_000),
        "sqlite": (0, 10_000, 100_000),
        "mariadb": (0, 10_000, 100_000),
    },
    claim_samples=300,
    drain_tasks=1000,
    churn_tasks=100_000,
)
QUICK_SCALE = ScalePlan(
    steps={"postgresql": (0, 2000), "sqlite": (0, 2000), "mariadb": (0, 2000)},
    claim_samples=20,
    drain_tasks=100,
    churn_tasks=1000,
)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)  # unwind, so running workers are stopped


def _say(vendor: str, message: str) -> None:
    sys.stderr.write(f"[{vendor} scale] {message}\n")
    sys.stderr.flush()


def run(plan: ScalePlan, vendor: str, log_dir: Path, points: list[dict[str, Any]]) -> None:
    """Fill, measure at each step, churn, measure again; append the points as measured."""
    from django.core.management import call_command

    from .admin_scale import fill

    call_command("migrate", verbosity=0)
    filled = 0
    for step in plan.steps[vendor]:
        if step > filled:
            started = time.monotonic()
            fill(vendor, step - filled)
            _say(vendor, f"filled to {step:,} finished rows in {time.monotonic() - started:.0f} s")
            filled = step
        _analyze(vendor)
        points.append(_measure_point(plan, vendor, f"{step:,} finished", log_dir))
        _say(vendor, _summary(points[-1]))
    started = time.monotonic()
    _churn(plan.churn_tasks, log_dir)
    _say(vendor, f"churned {plan.churn_tasks:,} tasks in {time.monotonic() - started:.0f} s")
    points.append(
        _measure_point(plan, vendor, f"{filled:,} + {plan.churn_tasks:,} churned", log_dir)
    )
    _say(vendor, _summary(points[-1]))


def _summary(point: dict[str, Any]) -> str:
    return (
        f"{point['label']}: claim p50 {point['claim_p50_ms']:.2f} ms, "
        f"p95 {point['claim_p95_ms']:.2f} ms, drain {point['drain_per_s']:,.0f}/s"
    )


def _measure_point(plan: ScalePlan, vendor: str, label: str, log_dir: Path) -> dict[str, Any]:
    from taskmill.models import TaskRecord

    claims = _claim_latencies(plan.claim_samples)
    point: dict[str, Any] = {
        "label": label,
        "table_rows": TaskRecord.objects.count(),
        "claim_p50_ms": statistics.median(claims),
        "claim_p95_ms": _percentile(claims, 95),
        "claim_samples_ms": [round(value, 3) for value in claims],
        "drain_per_s": _drain_rate(plan.drain_tasks, log_dir),
    }
    point.update(_table_stats(vendor))
    return point


def _claim_latencies(samples: int) -> list[float]:
    """Time claim() of one ready task, `samples` times; each claimed task is then finished."""
    from taskmill.queue import get_queue
    from taskmill.queue.lease import ClaimRequest

    from .tasks import noop

    queue = get_queue("default")
    request = ClaimRequest(
        worker_id="bench-scale", queue_names=("default",), limit=1, lease_seconds=30.0
    )
    latencies = []
    for _ in range(samples):
        noop.enqueue()
        started = time.perf_counter()
        claimed = queue.claim(request)
        latencies.append((time.perf_counter() - started) * 1000)
        if len(claimed) != 1:
            raise RuntimeError(f"claim() returned {len(claimed)} tasks, not the 1 just enqueued")
        _finish([claimed[0].id])
    return latencies


def _finish(ids: list[Any]) -> None:
    """Mark claimed tasks succeeded in one UPDATE: the row versions a worker's finish leaves."""
    from django.utils import timezone

    from taskmill.models import TaskRecord
    from taskmill.states import State

    now = timezone.now()
    TaskRecord.objects.filter(id__in=ids, state=State.RUNNING).update(
        state=State.SUCCEEDED,
        finished_at=now,
        lease_owner=None,
        lease_expires_at=None,
        expires_at=now + timedelta(days=1),
    )


def _drain_rate(count: int, log_dir: Path) -> float:
    from django.db.models import Max, Min

    from taskmill import enqueue_many
    from taskmill.models import TaskRecord
    from taskmill.states import State

    from .tasks import noop
    from .worker_runs import BenchError, running_worker

    ids = [result.id for result in enqueue_many(noop, [((), {})] * count)]
    with running_worker(["--concurrency", "2", "--burst"], log_dir) as worker:
        code = worker.popen.wait(max(120.0, count / 10))
        if code != 0:
            raise BenchError(f"burst worker exited {code}:\n{worker.log_tail()}")
    done = TaskRecord.objects.filter(id__in=ids, state=State.SUCCEEDED)
    times = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    if done.count() != count:
        raise BenchError(f"the burst worker left {count - done.count()} of {count} tasks")
    return float(count / (times["last"] - times["first"]).total_seconds())


def _churn(count: int, log_dir: Path) -> None:
    """Put `count` tasks through a running worker, BATCH at a time; stop it once all ran."""
    from taskmill import enqueue_many

    from .tasks import noop
    from .worker_runs import running_worker

    with running_worker(["--concurrency", "2"], log_dir) as worker:
        for start in range(0, count, BATCH):
            enqueue_many(noop, [((), {})] * min(BATCH, count - start))
            # The next batch goes in when this one is nearly done: the worker never idles.
            _wait_for_active(BATCH // 10, worker)
        _wait_for_active(0, worker)


def _wait_for_active(at_most: int, worker: Any) -> None:
    from taskmill.models import TaskRecord
    from taskmill.states import ACTIVE_STATES

    from .worker_runs import BenchError

    active = TaskRecord.objects.filter(state__in=ACTIVE_STATES)
    deadline = time.monotonic() + max(120.0, BATCH / 10)
    while active.count() > at_most:
        if worker.popen.poll() is not None or time.monotonic() > deadline:
            raise BenchError(f"the churn's worker stalled:\n{worker.log_tail()}")
        time.sleep(CHURN_POLL)


def _analyze(vendor: str) -> None:
    """Fresh planner statistics, as autovacuum's ANALYZE would have them after a bulk load."""
    from django.db import connection

    from taskmill.models import TaskRecord

    table = connection.ops.quote_name(TaskRecord._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")  # same statement on all three databases


def _table_stats(vendor: str) -> dict[str, Any]:
    """PostgreSQL only: dead row versions, the table's size with its indexes, and how many
    claim-index pages a claim reads (a count, unlike the claim's time, that the machine's
    load doesn't move)."""
    if vendor != "postgresql":
        return {}
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_dead_tup, pg_total_relation_size(relid), autovacuum_count, vacuum_count "
            "FROM pg_stat_user_tables WHERE relname = 'taskmill_taskrecord'"
        )
        dead, size, autovacuums, vacuums = cursor.fetchone()
    return {
        "dead_rows": dead,
        "table_mb": round(size / 2**20, 1),
        "autovacuums": autovacuums,
        "vacuums": vacuums,
        "claim_index_pages_read": _claim_index_pages_read(),
    }


def _claim_index_pages_read() -> int | None:
    """EXPLAIN (ANALYZE, BUFFERS) the claim of one ready task, rolled back, then claim it for
    real; return the pages its scan of the claim index read (None: no such scan)."""
    from django.db import connection, transaction

    from taskmill.queue import get_queue
    from taskmill.states import State

    from .tasks import noop

    queue: Any = get_queue("default")
    noop.enqueue()
    params: dict[str, Any] = {
        "queues": ["default"],
        "limit": 1,
        "running": State.RUNNING.value,
        "worker_id": "bench-explain",
        "lease": 30.0,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + queue._claim_sql, params)
        (plan,) = cursor.fetchone()
        transaction.set_rollback(True)
    _finish([record.id for record in _claim_one()])
    nodes = [json.loads(plan)[0]["Plan"] if isinstance(plan, str) else plan[0]["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Index Name") == "taskmill_claim_idx":
            return int(node["Shared Hit Blocks"]) + int(node["Shared Read Blocks"])
        nodes.extend(node.get("Plans", []))
    return None


def _claim_one() -> list[Any]:
    from taskmill.queue import get_queue
    from taskmill.queue.lease import ClaimRequest

    request = ClaimRequest(
        worker_id="bench-explain", queue_names=("default",), limit=1, lease_seconds=30.0
    )
    return get_queue("default").claim(request)


def _percentile(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * percent // 100))
    return ordered[int(rank) - 1]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--out", type=Path, required=True, help="write the JSON result here")
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    options = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _on_sigterm)
    django.setup()
    vendor = os.environ.get("BENCH_DB_VENDOR", "sqlite")
    plan = QUICK_SCALE if options.quick else DEFAULT_SCALE
    started = time.monotonic()
    points: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="taskmill-bench-logs-") as log_dir:
            run(plan, vendor, Path(log_dir), points)
    except Exception as error:  # keep the points measured so far, report the failure
        errors["scale"] = "".join(traceback.format_exception(error))
        _say(vendor, f"FAILED: {error}")
    result = {"points": points, "errors": errors, "duration_s": round(time.monotonic() - started)}
    options.out.write_text(json.dumps(result, indent=2))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
