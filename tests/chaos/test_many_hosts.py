"""Many hosts: three worker hosts in network namespaces against one PostgreSQL, and one host's
link cut mid-run.

The cut-off host's leases expire and the other hosts rescue its tasks (WorkerLost, a new
attempt). When its link comes back, the work its children were doing reaches the database
late, but its outcomes are refused (`lease lost`): nothing it does a second time is missing
from the record. It then goes on as a healthy worker.
"""

import contextlib
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Value

import taskmill
from taskmill.models import TaskRecord, Worker
from taskmill.queue.clock import DatabaseNow, read_database_now
from tests.chaos.netns import Host, NetnsUnavailable, Network
from tests.chaos.scale import Figures, scaled
from tests.integration.helpers import error_paths, record, short_lease_env, started_pids, summary
from tests.processes import WorkerFactory, WorkerProcess
from tests.testapp import tasks
from tests.testapp.models import LedgerEntry
from tests.waiting import WaitUntil

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.only_on("postgresql")]

HOSTS = 3
CONCURRENCY = 2
STREAM = scaled(40, 2_000)  # tasks flowing while the link is cut and after it comes back
AFTER = 3  # tasks the host that came back runs alone, to show it is healthy
# The shortest cut: `make chaos` keeps the link down long enough for TCP's resends to back off
# to many seconds, while the stream flows on the other hosts.
MIN_DOWN = scaled(0.0, 30.0)
WORKER_LOST = "taskmill.exceptions.WorkerLost"
# Generous: the machine is shared, and a connection that hung while the link was down resumes
# only at its next TCP retransmission, up to about as long after the restore as it was down.
DEADLINE = scaled(120.0, 600.0)


@pytest.fixture
def network() -> Iterator[Network]:
    """Three hosts reaching the test database through forwarders; removed after the test."""
    settings = connection.settings_dict
    try:
        made = Network.create(HOSTS, upstream=(settings["HOST"], int(settings["PORT"])))
    except NetnsUnavailable as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"can't make network namespaces: {error} (CI=true: this test must run)")
        pytest.skip(f"can't make network namespaces: {error}")
    try:
        yield made
    finally:
        for host in made.hosts:
            # Back up first, so a worker still running can shut down cleanly; a failure here
            # must not keep destroy() from removing everything.
            with contextlib.suppress(NetnsUnavailable):
                if host.is_cut:
                    host.restore()
        problems = made.destroy()
        left = made.leftovers()
    assert not problems, f"removing the test's hosts failed: {problems}"
    assert not left, f"namespaces or links left behind: {left}"


def test_a_cut_off_host_finishes_nothing_twice_that_the_record_does_not_show(
    # `network` comes first: fixtures are torn down in reverse, so the workers stop before
    # their hosts and forwarders are removed.
    network: Network,
    worker_process: WorkerFactory,
    wait_until: WaitUntil,
    figures: Figures,
    tmp_path: Path,
) -> None:
    workers = [_start_worker(worker_process, host) for host in network.hosts]
    wait_until(lambda: Worker.objects.count() == HOSTS, timeout=DEADLINE)
    cut_host, cut_worker = network.hosts[-1], workers[-1]
    cut_id = Worker.objects.values_list("id", flat=True).get(pid=cut_worker.pid)
    gate = tmp_path / "gate"
    gated = _fill_every_slot_at(gate, wait_until)
    stream = [
        result.id
        for result in taskmill.enqueue_many(
            tasks.record_execution.using(max_attempts=3), [((), {})] * STREAM
        )
    ]
    cut_tasks = [
        str(i) for i in TaskRecord.objects.filter(lease_owner=cut_id).values_list("id", flat=True)
    ]
    assert len(cut_tasks) == CONCURRENCY, _summaries(gated)

    down_for = _cut_until_rescued_and_run_elsewhere(cut_host, cut_tasks, gate, wait_until)
    restored, restored_at = time.monotonic(), read_database_now(DEFAULT_DB_ALIAS)
    wait_until(
        lambda: Worker.objects.filter(id=cut_id, last_heartbeat_at__gt=restored_at).exists(),
        timeout=DEADLINE,
        message="the host that came back heartbeats again",
    )
    back_after = time.monotonic() - restored
    wait_until(
        lambda: _lease_lost(cut_worker) >= len(cut_tasks),
        timeout=DEADLINE,
        message=lambda: (
            f"the host that came back refused its late outcomes:\n{cut_worker.output()}"
        ),
    )
    wait_until(lambda: _all_succeeded(gated + stream), timeout=DEADLINE)
    after = _run_alone_on(cut_worker, cut_id, stop_first=workers[:-1], wait_until=wait_until)

    everything = gated + stream + after
    duplicates = _assert_every_execution_is_an_attempt_on_record(everything)
    # Only the cut-off host's tasks were rescued, each once, and its late results changed
    # nothing: the second attempt, run elsewhere, stands.
    for result_id in cut_tasks:
        row = record(result_id)
        assert (row.state, row.attempts, error_paths(result_id)) == ("succeeded", 2, [WORKER_LOST])
        assert row.worker_ids[0] == cut_id != row.worker_ids[1]
    rescued = TaskRecord.objects.filter(
        id__in=everything, errors__contains=[{"exception_class_path": WORKER_LOST}]
    ).count()
    assert rescued == len(cut_tasks)
    assert duplicates <= len(cut_tasks)
    figures.update(
        hosts=HOSTS,
        tasks=len(everything),
        rescued=rescued,
        duplicates=duplicates,
        link_down_s=round(down_for, 1),
        heartbeat_again_after_s=round(back_after, 1),
        lease_lost_logged=sum(_lease_lost(w) for w in workers),
    )


def test_a_host_whose_sessions_ended_while_it_was_cut_off_reconnects_and_goes_on(
    network: Network, worker_process: WorkerFactory, wait_until: WaitUntil, figures: Figures
) -> None:
    """A failover during the cut: the server ends the host's sessions, and can't tell it.

    With CONN_HEALTH_CHECKS, as the docs recommend, no task meets a dead connection: without
    it, the first task each child runs afterwards fails an attempt on its old one.
    """
    host = network.hosts[0]
    worker = _start_worker(worker_process, host, {"TASKMILL_TEST_CONN_HEALTH_CHECKS": "1"})
    wait_until(lambda: Worker.objects.exists(), timeout=DEADLINE)
    worker_id = Worker.objects.values_list("id", flat=True).get()
    before = tasks.record_execution.enqueue().id
    wait_until(lambda: _all_succeeded([before]), timeout=DEADLINE)

    host.cut()
    try:
        # Its heartbeats stopped arriving: a query of its own waits on the cut link.
        wait_until(lambda: _silent_for(worker_id, timedelta(seconds=2)), timeout=DEADLINE)
        ended = host.end_sessions()
    finally:
        host.restore()
    restored = time.monotonic()
    after = tasks.record_execution.enqueue().id
    wait_until(
        lambda: _all_succeeded([after]),
        timeout=DEADLINE,
        message=lambda: f"a task run after the link came back:\n{worker.output()}",
    )
    back_after = time.monotonic() - restored

    assert "database error, reconnecting" in worker.output()
    assert summary(after) == {
        "state": "succeeded",
        "attempts": 1,
        "errors": [],
        "worker_ids": [worker_id],
    }
    assert worker.stop() == [], worker.output()
    assert worker.popen.returncode == 0, worker.output()
    figures.update(sessions_ended=ended, task_run_after_s=round(back_after, 1))


def _fill_every_slot_at(gate: Path, wait_until: WaitUntil) -> list[str]:
    """Enqueue one task per slot of every host, each waiting at `gate`; return their ids.

    Higher priority and no retry delay: once rescued, they are claimed before the stream,
    which keeps the time the link is down short.
    """
    gate.mkdir()
    held = tasks.record_execution.using(priority=10, max_attempts=3, retry_delay=0)
    gated = [held.enqueue(str(gate)).id for _ in range(HOSTS * CONCURRENCY)]
    wait_until(
        lambda: len(started_pids(gate)) == HOSTS * CONCURRENCY,
        timeout=DEADLINE,
        message=lambda: f"every slot's task at the gate: {_summaries(gated)}",
    )
    return gated


def _cut_until_rescued_and_run_elsewhere(
    host: Host, cut_tasks: list[str], gate: Path, wait_until: WaitUntil
) -> float:
    """Cut `host` off until its tasks were rescued and finished on the other hosts.

    The gate opens once they are rescued, so the cut-off host's children run on too: their
    work reaches the database when the link is back. Return how long the link was down.
    """
    host.cut()
    cut_at = time.monotonic()
    try:
        wait_until(
            lambda: _rescued(cut_tasks),
            timeout=DEADLINE,
            message=lambda: f"the cut-off host's tasks rescued: {_summaries(cut_tasks)}",
        )
        (gate / "release").touch()
        wait_until(
            lambda: _all_succeeded(cut_tasks),
            timeout=DEADLINE,
            message=lambda: f"rescued tasks finished elsewhere: {_summaries(cut_tasks)}",
        )
        # The outage's length is part of the scenario, not a wait for a condition.
        time.sleep(max(0.0, cut_at + MIN_DOWN - time.monotonic()))
    finally:
        host.restore()
    return time.monotonic() - cut_at


def _run_alone_on(
    worker: WorkerProcess, worker_id: str, *, stop_first: list[WorkerProcess], wait_until: WaitUntil
) -> list[str]:
    """Stop the other workers, then show `worker` claims and runs new tasks, and stops cleanly.

    Healthy, not just alive. Return the new tasks' ids.
    """
    for other in stop_first:
        assert other.stop() == [], other.output()
        assert other.popen.returncode == 0, other.output()
    after = [tasks.record_execution.enqueue().id for _ in range(AFTER)]
    wait_until(lambda: _all_succeeded(after), timeout=DEADLINE)
    ran_by = TaskRecord.objects.filter(id__in=after).values_list("worker_ids", flat=True)
    assert [list(ids) for ids in ran_by] == [[worker_id]] * AFTER
    assert worker.stop() == [], worker.output()
    assert worker.popen.returncode == 0, worker.output()
    return after


def _start_worker(
    worker_process: WorkerFactory, host: Host, env: dict[str, str] | None = None
) -> WorkerProcess:
    env = {**short_lease_env(), **host.database_env(), **(env or {})}
    # No prefetch: each host claims only what its children run, so the gated tasks fill
    # every slot of every host, CONCURRENCY each.
    return worker_process(
        "--concurrency",
        str(CONCURRENCY),
        "--prefetch",
        "0",
        env=env,
        command_prefix=host.command_prefix,
    )


def _assert_every_execution_is_an_attempt_on_record(ids: list[str]) -> int:
    """Check each execution against its task's record; return how many were duplicates.

    An execution is one of the record's attempts: the last one, which succeeded, or an earlier
    one the record shows ended by WorkerLost. No attempt ran twice, and every task ran.
    """
    records = {str(r.id): r for r in TaskRecord.objects.filter(id__in=ids)}
    runs = Counter(
        LedgerEntry.objects.filter(result_id__in=ids).values_list("result_id", "attempt")
    )
    twice = {run: n for run, n in runs.items() if n > 1}
    assert not twice, f"attempts that ran more than once: {twice}"
    for result_id, attempt in runs:
        row = records[result_id]
        lost = {e["attempt"] for e in row.errors if e["exception_class_path"] == WORKER_LOST}
        assert attempt == row.attempts or attempt in lost, (
            f"attempt {attempt}: {summary(result_id)}"
        )
        assert len(row.worker_ids) == row.attempts
    last_attempts = {(str(r.id), r.attempts) for r in records.values()}
    assert last_attempts <= set(runs), "every task's recorded attempt ran"
    return len(runs) - len(records)


def _rescued(ids: list[str]) -> bool:
    rows = TaskRecord.objects.filter(id__in=ids).values_list("errors", flat=True)
    return all(any(e["exception_class_path"] == WORKER_LOST for e in errors) for errors in rows)


def _all_succeeded(ids: list[str]) -> bool:
    return TaskRecord.objects.filter(id__in=ids, state="succeeded").count() == len(ids)


def _lease_lost(worker: WorkerProcess) -> int:
    return len(re.findall(r"lease lost task_id=", worker.output()))


def _summaries(ids: list[str]) -> list[dict[str, object]]:
    return [summary(result_id) for result_id in ids]


def _silent_for(worker_id: str, silence: timedelta) -> bool:
    """Whether the worker's last heartbeat is older than `silence`, on the database's clock."""
    stale = DatabaseNow() - Value(silence)
    return Worker.objects.filter(id=worker_id, last_heartbeat_at__lt=stale).exists()
