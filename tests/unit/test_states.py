"""The state machine: every state's Django status, the transition table, finished states."""

import pytest
from django.tasks import TaskResultStatus

from taskmill.exceptions import InvalidTaskRecord
from taskmill.states import (
    ACTIVE_STATES,
    FINISHED_STATES,
    TRANSITIONS,
    State,
    can_transition,
    is_finished,
    state_problem,
    to_django_status,
)

EXPECTED_STATUS = {
    State.BLOCKED: TaskResultStatus.READY,
    State.READY: TaskResultStatus.READY,
    State.RUNNING: TaskResultStatus.RUNNING,
    State.SUCCEEDED: TaskResultStatus.SUCCESSFUL,
    State.FAILED: TaskResultStatus.FAILED,
    State.CANCELLED: TaskResultStatus.FAILED,
}

ALLOWED = {
    (State.BLOCKED, State.READY),
    (State.BLOCKED, State.CANCELLED),
    (State.READY, State.RUNNING),
    (State.READY, State.CANCELLED),
    (State.RUNNING, State.READY),
    (State.RUNNING, State.SUCCEEDED),
    (State.RUNNING, State.FAILED),
    (State.RUNNING, State.CANCELLED),
}


def test_states__are_the_lowercase_words_of_the_design() -> None:
    assert [state.value for state in State] == [
        "blocked",
        "ready",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    ]


@pytest.mark.parametrize(("state", "status"), EXPECTED_STATUS.items(), ids=str)
def test_to_django_status__maps_each_state(state: State, status: TaskResultStatus) -> None:
    assert to_django_status(state) == status
    # Rows hold plain strings; they map the same.
    assert to_django_status(state.value) == status


def test_to_django_status__covers_every_state() -> None:
    assert set(EXPECTED_STATUS) == set(State)


def test_to_django_status__unknown_state_raises_invalid_task_record_saying_what_happens() -> None:
    # A ValueError still, as before; the message says what workers do with such a row.
    with pytest.raises(InvalidTaskRecord) as caught:
        to_django_status("paused")
    assert isinstance(caught.value, ValueError)
    assert str(caught.value) == (
        "state 'paused' is not a Taskmill state (blocked, ready, running, succeeded, failed, "
        "cancelled); workers fail such tasks, after which a retry runs them again (admin "
        "action or `taskmill retry`)"
    )


def test_state_problem__none_for_every_known_state() -> None:
    assert [state_problem(state) for state in State.values] == [None] * len(State)
    assert state_problem("") is not None


def test_is_finished__an_unknown_state_is_not_finished_yet() -> None:
    assert is_finished("bogus") is False


@pytest.mark.parametrize("current", list(State), ids=str)
@pytest.mark.parametrize("new", list(State), ids=str)
def test_can_transition__allows_exactly_the_table(current: State, new: State) -> None:
    assert can_transition(current, new) == ((current, new) in ALLOWED)
    assert can_transition(current.value, new.value) == ((current, new) in ALLOWED)


def test_transitions__table_has_every_state_and_finished_states_are_final() -> None:
    assert set(TRANSITIONS) == set(State)
    for state in FINISHED_STATES:
        assert TRANSITIONS[state] == frozenset()


def test_transitions__no_state_moves_to_itself_or_back_to_blocked() -> None:
    for current, targets in TRANSITIONS.items():
        assert current not in targets
        assert State.BLOCKED not in targets


def test_active_and_finished_states__partition_all_states() -> None:
    assert set(State) == ACTIVE_STATES | FINISHED_STATES
    assert not ACTIVE_STATES & FINISHED_STATES
    assert {State.BLOCKED, State.READY, State.RUNNING} == ACTIVE_STATES


@pytest.mark.parametrize("state", list(State), ids=str)
def test_is_finished__true_only_for_succeeded_failed_cancelled(state: State) -> None:
    assert is_finished(state) == (state in {State.SUCCEEDED, State.FAILED, State.CANCELLED})
    assert is_finished(state.value) == is_finished(state)


def test_is_finished__agrees_with_the_django_status() -> None:
    for state in State:
        status = to_django_status(state)
        finished_in_django = status in {TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED}
        assert is_finished(state) == finished_in_django
