"""Text for the terminal: control characters shown as escapes, never acted on."""

from taskmill.cli.terminal import printable


def test_printable__escapes_controls_c1_and_bidi_overrides() -> None:
    text = "a\x1b[2Jb\x07c\x9bd\u202ee\x00f\x7f"

    assert printable(text) == "a\\x1b[2Jb\\x07c\\x9bd\\u202ee\\x00f\\x7f"


def test_printable__newlines_and_carriage_returns() -> None:
    assert printable("one\ntwo\rthree") == "one\\ntwo\\rthree"
    assert printable("one\ntwo\rthree", keep_newlines=True) == "one\ntwo\\rthree"


def test_printable__keeps_tabs_unicode_and_non_strings() -> None:
    assert printable("tab\there, café, 漢字") == "tab\there, café, 漢字"
    assert printable(42) == "42"
    assert printable({"k": "\x1b"}) == "{'k': '\\x1b'}"
