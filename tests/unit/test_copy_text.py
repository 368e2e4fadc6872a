"""COPY's text format for the bulk enqueue (queue/copy_text.py): escapes, and the text of each
kind of value a task row holds."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from taskmill.queue.copy_text import NULL, escaped, escaped_json, field_text, line_tail


def test_escaped__backslash_tab_newline_and_carriage_return_become_escapes() -> None:
    assert escaped("a\\b\tc\nd\re") == "a\\\\b\\tc\\nd\\re"


def test_escaped__a_lone_end_marker_is_kept_as_data() -> None:
    assert escaped("\\.") == "\\\\."


@pytest.mark.parametrize(
    "text", ['["back\\\\slash"]', '{"tab": "\\t"}', '["\\u00e9"]', "[]", '{"q": "\\""}']
)
def test_escaped_json__escapes_json_text_as_escaped_does(text: str) -> None:
    assert escaped_json(text) == escaped(text)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, NULL),
        (True, "t"),
        (False, "f"),
        (0, "0"),
        (-7, "-7"),
        (1.5, "1.5"),
        (Decimal("2.50"), "2.50"),
        ("plain", "plain"),
        ("tab\there", "tab\\there"),
        ("\\N", "\\\\N"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
        (
            datetime(2026, 12, 3, 4, 5, 6, 7, tzinfo=UTC),
            "2026-12-03T04:05:06.000007+00:00",
        ),
    ],
    ids=repr,
)
def test_field_text__writes_each_kind_of_value(value: object, text: str) -> None:
    assert field_text(value) == text


def test_field_text__refuses_a_value_without_a_text_form() -> None:
    with pytest.raises(TypeError, match="No COPY text form for bytes"):
        field_text(b"\x00")


def test_line_tail__separates_with_tabs_and_ends_the_line() -> None:
    assert line_tail(["a", None, 3]) == "a\t\\N\t3\n"
