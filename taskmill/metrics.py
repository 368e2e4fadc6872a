"""Prometheus metrics read from the database at scrape time (optional: needs prometheus_client).

Counters are totals of the finished rows still in the table, so pruning lowers them: see
docs/how-to/monitoring.md for what that means for rate() and increase().
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.utils import timezone

from . import stats
from .exceptions import ConfigurationError
from .models import TaskRecord
from .routers import queue_databases
from .states import FINISHED_STATES, State

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry
    from prometheus_client.samples import Sample  # noqa: F401 - for readers of the types

# Upper bounds (seconds) of the duration histogram's buckets; +Inf is added.
DURATION_BUCKETS: Final = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
CONTENT_TYPE_HINT: Final = "text/plain; version=0.0.4; charset=utf-8"


class MissingPrometheusClient(ConfigurationError):
    """prometheus_client, which the metrics endpoint needs, is not installed."""


def _require_client() -> Any:
    try:
        import prometheus_client
    except ImportError as error:
        raise MissingPrometheusClient(
            "Taskmill's metrics need the prometheus_client package: "
            "pip install 'django-taskmill[prometheus]' (or pip install prometheus_client)."
        ) from error
    return prometheus_client


class TaskmillCollector:
    """A prometheus_client collector that queries the queue databases on each scrape."""

    def __init__(self, now: datetime | None = None) -> None:
        self.fixed_now = now

    def describe(self) -> list[Any]:
        # No queries at registration time: describe() is called when the collector is added.
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        now = self.fixed_now or timezone.now()
        queues = stats.queue_stats(now)
        depth = GaugeMetricFamily(
            "taskmill_queue_depth", "Ready tasks that are due, per queue.", labels=["queue"]
        )
        waiting = GaugeMetricFamily(
            "taskmill_queue_waiting",
            "Ready tasks not yet due (run_after in the future) and blocked tasks, per queue.",
            labels=["queue"],
        )
        running = GaugeMetricFamily(
            "taskmill_tasks_running", "Running tasks, per queue.", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "taskmill_queue_oldest_due_age_seconds",
            "How long the oldest due task has waited past its run_after, per queue.",
            labels=["queue"],
        )
        for queue in queues:
            depth.add_metric([queue.name], queue.due)
            waiting.add_metric([queue.name], queue.waiting + queue.blocked)
            running.add_metric([queue.name], queue.running)
            age = queue.oldest_wait(now)
            oldest.add_metric([queue.name], age.total_seconds() if age is not None else 0.0)
        yield from (depth, waiting, running, oldest)
        yield from _finished_counters(CounterMetricFamily)
        yield _duration_histogram(HistogramMetricFamily, now)
        workers = GaugeMetricFamily(
            "taskmill_workers_alive", "Workers with a heartbeat within one lease."
        )
        workers.add_metric([], len(stats.all_workers_alive(now)))
        yield workers


def _finished_counters(counter_family: Any) -> Iterator[Any]:
    processed = counter_family(
        "taskmill_tasks_processed",
        "Finished tasks (succeeded, failed or cancelled) still kept in the table, per queue.",
        labels=["queue"],
    )
    failed = counter_family(
        "taskmill_tasks_failed",
        "Failed tasks still kept in the table, per queue.",
        labels=["queue"],
    )
    totals: dict[str, dict[str, int]] = {}
    for using in queue_databases():
        rows = (
            TaskRecord.objects.using(using)
            .filter(state__in=FINISHED_STATES)
            .values("queue_name")
            .annotate(n=Count("id"), failed=Count("id", filter=Q(state=State.FAILED)))
            .order_by()
        )
        for row in rows:
            entry = totals.setdefault(row["queue_name"], {"n": 0, "failed": 0})
            entry["n"] += row["n"]
            entry["failed"] += row["failed"]
    for queue, entry in sorted(totals.items()):
        processed.add_metric([queue], entry["n"])
        failed.add_metric([queue], entry["failed"])
    yield processed
    yield failed


def _duration_histogram(histogram_family: Any, now: datetime) -> Any:
    """Run time of the last attempt of tasks finished in the last stats.WINDOW, per queue."""
    run_time = ExpressionWrapper(
        F("finished_at") - F("last_attempted_at"), output_field=DurationField()
    )
    aggregates: dict[str, Any] = {"n": Count("id"), "total": Sum("run_time")}
    for index, bound in enumerate(DURATION_BUCKETS):
        aggregates[f"le{index}"] = Count("id", filter=Q(run_time__lte=timedelta(seconds=bound)))
    histogram = histogram_family(
        "taskmill_task_duration_seconds",
        f"Run time of the last attempt of tasks finished in the last "
        f"{int(stats.WINDOW.total_seconds())} seconds, per queue (a window, not a running "
        "total).",
        labels=["queue"],
    )
    merged: dict[str, list[int]] = {}
    sums: dict[str, float] = {}
    for using in queue_databases():
        rows = (
            stats.finished_recently(using, now - stats.WINDOW)
            .filter(last_attempted_at__isnull=False)
            .annotate(run_time=run_time)
            .values("queue_name")
            .annotate(**aggregates)
            .order_by()
        )
        row: dict[str, Any]
        for row in rows:  # type: ignore[assignment]  # values() then annotate(**dict): untyped keys
            counts = [row[f"le{i}"] for i in range(len(DURATION_BUCKETS))] + [row["n"]]
            previous = merged.get(row["queue_name"], [0] * len(counts))
            merged[row["queue_name"]] = [a + b for a, b in zip(previous, counts, strict=True)]
            total = row["total"] or timedelta()
            sums[row["queue_name"]] = sums.get(row["queue_name"], 0.0) + total.total_seconds()
    for queue, counts in sorted(merged.items()):
        bounds = [*(str(float(b)) for b in DURATION_BUCKETS), "+Inf"]
        histogram.add_metric([queue], list(zip(bounds, counts, strict=True)), sums[queue])
    return histogram


def render_metrics(now: datetime | None = None) -> tuple[bytes, str]:
    """Return the Prometheus text exposition of Taskmill's metrics and its content type.

    Raise MissingPrometheusClient if prometheus_client isn't installed.
    """
    client = _require_client()
    registry: CollectorRegistry = client.CollectorRegistry(auto_describe=False)
    registry.register(TaskmillCollector(now))
    return client.generate_latest(registry), str(client.CONTENT_TYPE_LATEST)
