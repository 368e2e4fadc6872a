"""The checks of a row's JSON bookkeeping: what the worker may trust, and how a problem reads."""

import json

import pytest

from taskmill.codec import TolerantJSONDecoder, UndecodableJSON
from taskmill.row_checks import read_errors, read_options, row_problems
from tests.testapp import tasks


def test_read_options__a_row_enqueued_by_taskmill_has_no_problem() -> None:
    stored = dict(tasks.configured.stored_options())
    usable, problems = read_options(stored)
    assert problems == []
    assert usable == stored


def test_read_options__empty_options_are_the_defaults_and_unknown_keys_are_ignored() -> None:
    assert read_options({}) == ({}, [])
    stored = {**tasks.add.stored_options(), "from_a_newer_version": 1}
    assert read_options(stored)[1] == []


def test_read_options__keeps_the_good_keys_and_names_each_bad_one() -> None:
    stored = {**tasks.add.stored_options(), "max_attempts": 0, "timeout": "soon"}
    usable, problems = read_options(stored)
    assert "max_attempts" not in usable
    assert "timeout" not in usable
    assert usable["log_level"] == 20
    assert problems == [
        "options['max_attempts'] must be a whole number >= 1, found int 0",
        "options['timeout'] must be seconds > 0 or null, found str 'soon'",
    ]


@pytest.mark.parametrize("stored", [None, "fast", [1], 3])
def test_read_options__not_an_object_is_one_problem(stored: object) -> None:
    usable, problems = read_options(stored)
    assert usable == {}
    assert problems == [f"options must be a JSON object, found {type(stored).__name__} {stored!r}"]


def test_read_errors__drops_malformed_entries_and_says_so() -> None:
    good = {"exception_class_path": "builtins.ValueError", "traceback": "ValueError\n"}
    assert read_errors([good]) == ([good], [])
    assert read_errors([good, "oops"]) == (
        [good],
        ["errors holds entries that are not {exception_class_path, traceback}"],
    )


def test_row_problems__undecodable_text_is_named_with_the_parser_error() -> None:
    text = json.loads("[1.]", cls=TolerantJSONDecoder)
    assert isinstance(text, UndecodableJSON)
    (problem,) = row_problems(args=text, kwargs={}, option_problems=[], errors=[], worker_ids=[])
    assert problem.startswith("args must be a JSON list, found text that is not valid JSON (")
    assert problem.endswith("): '[1.]'")
