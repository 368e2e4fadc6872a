"""The command line's aligned tables."""

import pytest

from taskmill.cli.table import format_table


def test_format_table__pads_columns_right_aligns_numbers_and_strips_line_ends() -> None:
    lines = format_table(
        ["queue", "due", "note"], [("default", 3, ""), ("reports", 120, "x")], right=(1,)
    )
    assert lines == [
        "QUEUE    DUE  NOTE",
        "default    3",
        "reports  120  x",
    ]


def test_format_table__no_rows_is_just_the_header() -> None:
    assert format_table(["a", "bb"], []) == ["A  BB"]


def test_format_table__a_row_of_the_wrong_length_is_an_error() -> None:
    with pytest.raises(ValueError, match="2 cells for 3 headers"):
        format_table(["a", "b", "c"], [(1, 2)])
