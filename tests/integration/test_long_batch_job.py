"""The worked example of docs/how-to/long-tasks.md on a real worker: a batch job over a
model's rows that depends on a preparation task, logs, reports progress, and is cancelled
half-way — then read back through taskmill.history."""

from pathlib import Path

import pytest

import taskmill
from tests.processes import WorkerFactory
from tests.testapp import tasks
from tests.testapp.models import Article
from tests.waiting import WaitUntil

from .helpers import captured, error_paths, record, started_pids, state_of

pytestmark = pytest.mark.django_db(transaction=True)


def test_batch_job_waits_for_its_preparation_reports_and_is_cancelled_half_way(
    worker_process: WorkerFactory, wait_until: WaitUntil, tmp_path: Path
) -> None:
    owner = Article.objects.create(title="the batch's owner")
    prepared = tasks.prepare_drafts.enqueue(10)
    job = tasks.publish_drafts.using(depends_on=[prepared], for_object=owner).enqueue(str(tmp_path))
    assert state_of(job.id) == "blocked"

    worker_process("--concurrency", "2")
    wait_until(lambda: started_pids(tmp_path), timeout=30, message="half-way")
    assert state_of(prepared.id) == "succeeded"
    # Progress is stored about every second: wait for it rather than expect it at once.
    wait_until(
        lambda: (record(job.id).progress or {}).get("done") == 5,
        timeout=10,
        message=lambda: f"progress 5 of 10: {record(job.id).progress}",
    )
    assert (record(job.id).progress or {})["total"] == 10

    assert taskmill.cancel(job.id) is True

    wait_until(lambda: state_of(job.id) == "cancelled", timeout=30, message="cancelled")
    assert error_paths(job.id) == ["taskmill.exceptions.TaskCancelled"]
    assert Article.objects.filter(title__startswith="published").count() == 5
    log = captured(job.id)["log"]
    assert log.count("published article") == 5
    assert "WARNING tests.testapp.tasks.publish_drafts: cancelled after 5 of 10" in log
    assert [str(r.id) for r in taskmill.history(owner)] == [job.id]
