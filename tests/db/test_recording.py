"""What the supervisor announces as finished: the claimed record with what finish() wrote."""

from django.utils import timezone

from taskmill.models import TaskRecord, record_columns
from taskmill.states import State
from taskmill.worker.recording import as_finished


def test_as_finished__applies_the_changes_to_a_copy_and_keeps_the_claim_untouched() -> None:
    claimed = TaskRecord(
        backend="default",
        task_path="tests.testapp.tasks.noop",
        queue_name="default",
        state=State.RUNNING,
        lease_owner="w-1",
        worker_ids=["w-1"],
    )
    claimed._state.adding = False
    claimed._state.db = "default"
    before = {name: getattr(claimed, name) for name in record_columns()}
    now = timezone.now()

    finished = as_finished(
        claimed,
        {"state": State.SUCCEEDED, "lease_owner": None, "finished_at": now, "return_value": 3},
    )

    assert {name: getattr(claimed, name) for name in record_columns()} == before
    assert (finished.state, finished.lease_owner, finished.finished_at) == (
        State.SUCCEEDED,
        None,
        now,
    )
    assert finished.return_value == 3
    assert finished.worker_ids == ["w-1"]
    assert finished.id == claimed.id
    assert (finished._state.adding, finished._state.db) == (False, "default")
