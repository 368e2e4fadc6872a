"""Property-based tests of the codec: any JSON value passes through unchanged, and anything that
is not JSON is refused with a TypeError that names where it is."""

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskmill.codec import JSON, decode_value, encode_arguments, encode_value, to_json_text
from tests.json_values import buried, json_values, keys
from tests.json_values import same as _same


def _no_reference(label: str, pk: JSON) -> Any:
    raise AssertionError(f"no model reference expected, got {label} {pk}")


@settings(max_examples=300)
@given(json_values)
def test_any_json_value_is_encoded_unchanged_and_survives_json_text(value: JSON) -> None:
    encoded = encode_value(value, "args[0]")
    assert _same(encoded, value)
    assert _same(json.loads(json.dumps(encoded)), value)
    assert _same(decode_value(encoded, _no_reference), value)


@settings(max_examples=200)
@given(st.lists(json_values, max_size=4), st.dictionaries(keys, json_values, max_size=4))
def test_any_json_arguments_round_trip(args: list[JSON], kwargs: dict[str, JSON]) -> None:
    encoded_args, encoded_kwargs = encode_arguments(args, kwargs)
    assert _same(encoded_args, args)
    assert _same(encoded_kwargs, kwargs)


@settings(max_examples=300)
@given(buried())
def test_anything_else_is_refused_naming_its_path(case: tuple[object, str]) -> None:
    value, path = case
    with pytest.raises(TypeError, match=r"^Unsupported") as caught:
        encode_value(value, "args[0]")
    # A bad value is named by its path; a bad key by the path of the mapping holding it, which
    # is where the buried value sits too.
    assert f"args[0]{path}" in str(caught.value)


@settings(max_examples=300)
@given(json_values)
def test_to_json_text__reads_back_as_the_same_value_with_no_exponent_above_one(
    value: JSON,
) -> None:
    text = to_json_text(value)
    # -0.0 is written as 0.0 (PostgreSQL's numeric has no negative zero): equal, sign aside.
    assert _same(json.loads(text), value, signed_zero=False)
    if isinstance(value, float) and value:
        assert "e+" not in text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e16, "10000000000000000.0"),
        (-1.5e16, "-15000000000000000.0"),
        (1e300, "1" + "0" * 300 + ".0"),
        (1.7976931348623157e308, "17976931348623157" + "0" * 292 + ".0"),
        (5e-324, "5e-324"),  # PostgreSQL gives a negative exponent back positional, still a float
        (-0.0, "0.0"),
        (0.1, "0.1"),
        ([1e16, {"e+": 2.0}], '[10000000000000000.0, {"e+": 2.0}]'),
        ("1e+16", '"1e+16"'),  # text is text
    ],
)
def test_to_json_text__writes_floats_every_database_keeps_as_floats(value: JSON, text: str) -> None:
    assert to_json_text(value) == text
