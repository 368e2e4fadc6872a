"""Hostile and wrong arguments, through the real databases: any JSON goes in and comes back
exactly (as arguments and as a task's return value); anything else, or too much of it, is
refused at enqueue with an error naming it, and nothing is stored."""

import math
from typing import Any

import pytest
from django.tasks import TaskResultStatus, default_task_backend
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import taskmill
from taskmill.codec import JSON
from taskmill.exceptions import ArgumentsTooLarge
from taskmill.models import TaskRecord
from taskmill.testing import run_until_empty
from tests.chaos.scale import Figures, scaled
from tests.json_values import buried, json_values, keys, same
from tests.processes import WorkerFactory
from tests.testapp import tasks

# Every example runs in the test's one transaction; the database makes each a few ms slower
# than hypothesis's default deadline expects on a busy machine.
DATABASE_EXAMPLES = settings(
    max_examples=scaled(40, 400),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Task.enqueue(self, *args, **kwargs): a keyword named "self" can't reach it.
kwarg_names = keys.filter(lambda key: key != "self")
arguments = st.tuples(
    st.lists(json_values, max_size=4), st.dictionaries(kwarg_names, json_values, max_size=4)
)


def same_json(left: object, right: object) -> bool:
    # Type-exact (1, 1.0 and True differ), but -0.0 reads back as 0.0: PostgreSQL's numeric
    # has no negative zero, so Taskmill stores 0.0 on every database.
    return same(left, right, signed_zero=False)


@pytest.mark.django_db
@DATABASE_EXAMPLES
@given(arguments)
def test_any_json_arguments_read_back_exactly(call: tuple[list[JSON], dict[str, JSON]]) -> None:
    args, kwargs = call
    result = tasks.echo.enqueue(*args, **kwargs)
    assert same_json(result.args, args)
    stored = default_task_backend.get_result(result.id)
    assert same_json(stored.args, args)
    assert same_json(stored.kwargs, kwargs)
    result.refresh()
    assert same_json(result.args, args)
    assert same_json(result.kwargs, kwargs)


@pytest.mark.django_db
@DATABASE_EXAMPLES
@given(arguments)
def test_a_task_returning_its_input_gives_back_exactly_that(
    call: tuple[list[JSON], dict[str, JSON]],
) -> None:
    args, kwargs = call
    result = tasks.echo.enqueue(*args, **kwargs)
    run_until_empty()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert same_json(result.return_value, {"args": args, "kwargs": kwargs})


# Floats at the edges (a positive exponent is what PostgreSQL's jsonb turned into an int),
# integers past 64 bits, text outside the BMP, and text that looks like a float.
EDGES: list[JSON] = [
    1e16,
    -1.5e16,
    1e300,
    1.7976931348623157e308,
    5e-324,
    2.2250738585072014e-308,
    0.1,
    1.0,
    1,
    True,
    None,
    2**64 + 1,
    -(2**63) - 1,
    10**300,
    "1e+16",
    "😀 \U0010ffff \u200b é",
    {"": [[], {}], "1e+16": [1e16, 1, 1.0, True]},
]


@pytest.mark.django_db(transaction=True)
def test_edge_values_come_back_exactly_through_a_worker_process(
    worker_process: WorkerFactory, figures: Figures
) -> None:
    result = tasks.echo.enqueue(*EDGES, edges=EDGES, zero=-0.0)
    assert worker_process("--burst").wait(60) == 0
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL, result.errors
    assert same_json(result.args, EDGES)
    returned = result.return_value
    assert same_json(returned, {"args": EDGES, "kwargs": {"edges": EDGES, "zero": 0.0}})
    assert math.copysign(1, returned["kwargs"]["zero"]) == 1  # stored as 0.0 everywhere
    figures["edge_values"] = len(EDGES)


def _enqueue(args: list[Any], kwargs: dict[str, Any], *, many: bool) -> None:
    if many:
        taskmill.enqueue_many(tasks.echo, [(["ok"], {}), (args, kwargs)])
    else:
        tasks.echo.enqueue(*args, **kwargs)


def _count() -> int:
    return TaskRecord.objects.count()


@pytest.mark.django_db
@settings(max_examples=scaled(60, 400), deadline=None)
@given(buried(), st.sampled_from(["args", "kwargs"]), st.booleans())
def test_anything_not_json_is_refused_at_enqueue_naming_its_path(
    case: tuple[object, str], where: str, many: bool
) -> None:
    value, path = case
    before = _count()
    args: list[Any] = ["fine", value] if where == "args" else ["fine"]
    kwargs: dict[str, Any] = {"payload": value} if where == "kwargs" else {}
    expected = f"args[1]{path}" if where == "args" else f"kwargs['payload']{path}"
    with pytest.raises(TypeError, match=r"Unsupported") as caught:
        _enqueue(args, kwargs, many=many)
    message = str(caught.value)
    assert expected in message
    if many:
        assert message.startswith("calls[1]: ")
    assert _count() == before


# -- The size limit (TASKMILL["MAX_ARGUMENT_BYTES"]) ---------------------------------------

LIMIT = 4096
# As stored: args ["xx…x"] take the text plus 4 bytes (`["` and `"]`), kwargs {} take 2.
OVERHEAD = 6


@pytest.mark.django_db
@override_settings(TASKMILL={"MAX_ARGUMENT_BYTES": LIMIT})
@pytest.mark.parametrize("many", [False, True], ids=["enqueue", "enqueue_many"])
def test_arguments_exactly_at_the_limit_are_stored_and_one_byte_more_is_refused(
    many: bool,
) -> None:
    def enqueue(text: str) -> None:
        if many:
            taskmill.enqueue_many(tasks.echo, [((), {}), ((text,), {})])
        else:
            tasks.echo.enqueue(text)

    enqueue("x" * (LIMIT - OVERHEAD))
    stored = TaskRecord.objects.count()
    with pytest.raises(ArgumentsTooLarge) as caught:
        enqueue("x" * (LIMIT - OVERHEAD + 1))
    message = str(caught.value)
    assert f"take {LIMIT + 1} bytes as JSON" in message
    assert f"TASKMILL['MAX_ARGUMENT_BYTES'] ({LIMIT})" in message
    assert message.startswith("calls[1]: ") == many
    assert TaskRecord.objects.count() == stored


@pytest.mark.django_db
def test_the_default_limit_is_one_mebibyte_of_arguments_counting_escapes() -> None:
    # Stored as JSON text with non-ASCII escaped: 200,000 "é" are 1,200,000 bytes, not 400,000.
    with pytest.raises(ArgumentsTooLarge, match=r"take 1200006 bytes .*\(1048576\)"):
        tasks.echo.enqueue("é" * 200_000)
    tasks.echo.enqueue("x" * (1024 * 1024 - OVERHEAD))
    assert TaskRecord.objects.count() == 1
