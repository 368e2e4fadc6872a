"""The messages between a supervisor and its children: a record survives the trip whole."""

from datetime import timedelta

from django.utils import timezone

from taskmill.models import TaskRecord
from taskmill.states import State
from taskmill.worker import payload
from taskmill.worker.recording import as_finished


def claimed_record() -> TaskRecord:
    now = timezone.now()
    return TaskRecord(
        backend="default",
        task_path="tests.testapp.tasks.noop",
        queue_name="default",
        priority=7,
        state=State.RUNNING,
        args=[1, "two", [3.5]],
        kwargs={"key": {"nested": None}},
        options={"timeout": 30},
        attempts=2,
        worker_ids=["w-1", "w-2"],
        errors=[{"exception_class_path": "builtins.ValueError", "traceback": "..."}],
        return_value=None,
        progress={"done": 1, "total": 4, "message": "a quarter"},
        enqueued_at=now - timedelta(minutes=5),
        run_after=now - timedelta(minutes=4),
        started_at=now - timedelta(minutes=3),
        last_attempted_at=now,
        finished_at=None,
        lease_owner="w-2",
    )


def test_record_from_json__gives_back_every_field_it_was_sent() -> None:
    record = claimed_record()

    (sent,) = payload.decode(payload.run_message([(7, payload.record_text(record))]))["tasks"]
    rebuilt = payload.record_from_json(sent["record"])

    assert sent["seq"] == 7

    assert rebuilt.id == record.id
    for name in (*payload.RECORD_FIELDS, *payload.TIME_FIELDS):
        assert getattr(rebuilt, name) == getattr(record, name), name


def test_record_from_json__fields_not_sent_take_their_defaults_like_a_new_record() -> None:
    rebuilt = payload.record_from_json(payload.record_to_json(claimed_record()))
    new = TaskRecord()

    sent = {"id", *payload.RECORD_FIELDS, *payload.TIME_FIELDS}
    unsent = [f.attname for f in TaskRecord._meta.concrete_fields if f.attname not in sent]
    assert unsent, "every column is sent: this test no longer checks the defaults"
    assert {name: getattr(rebuilt, name) for name in unsent} == {
        name: getattr(new, name) for name in unsent
    }
    assert rebuilt._state.adding
    assert rebuilt._state.db is None


def test_record_from_json__mutable_defaults_are_not_shared_between_records() -> None:
    data = payload.record_to_json(claimed_record())

    first, second = payload.record_from_json(data), payload.record_from_json(data)

    assert first.handed_back == []
    assert first.handed_back is not second.handed_back


def test_recorded_message__gives_the_claim_with_what_finishing_wrote_as_as_finished_does() -> None:
    record = claimed_record()
    now = timezone.now()
    changes: dict[str, object] = {
        "state": State.SUCCEEDED,
        "errors": [],
        "lease_owner": None,
        "lease_expires_at": None,
        "cancel_requested_at": None,
        "finished_at": now,
        "return_value": {"answer": [42, "é"]},
        "unique_key": None,
        "expires_at": now + timedelta(days=1),
    }
    expected = as_finished(record, changes)

    message = payload.decode(payload.recorded_message([(payload.record_text(record), changes)]))
    (data,), (sent_changes,) = message["records"], message["changes"]
    rebuilt = payload.record_from_json(data, sent_changes)

    assert message["type"] == "finished"
    assert rebuilt.id == record.id
    for name in (*payload.RECORD_FIELDS, *payload.TIME_FIELDS):
        assert getattr(rebuilt, name) == getattr(expected, name), name
    assert record.state == State.RUNNING  # the claim itself is untouched
