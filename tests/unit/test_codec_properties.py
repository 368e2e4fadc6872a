"""Property-based tests of the codec: any JSON value passes through unchanged, and anything that
is not JSON is refused with a TypeError that names where it is."""

import json
import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taskmill.codec import JSON, MODEL_KEY, decode_value, encode_arguments, encode_value


def _no_reference(label: str, pk: JSON) -> Any:
    raise AssertionError(f"no model reference expected, got {label} {pk}")


# Text every database stores as JSON: no NUL, no lone surrogates (refused on purpose).
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
keys = text.filter(lambda key: key != MODEL_KEY)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(keys, children, max_size=5),
    max_leaves=25,
)

not_json = st.sampled_from(
    [
        {1, 2},
        frozenset({"a"}),
        b"bytes",
        bytearray(b"x"),
        Decimal("1.5"),
        UUID(int=1),
        datetime(2026, 1, 1, tzinfo=UTC),
        date(2026, 1, 1),
        timedelta(seconds=1),
        complex(1, 2),
        object(),
        float("nan"),
        float("inf"),
        {1: "int key"},
        "nul \x00 inside",
        "lone \udc80 surrogate",
    ]
)


def _same(left: object, right: object) -> bool:
    """Equality that tells 1 from 1.0 and True from 1, as JSON does."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        assert isinstance(right, list)
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        assert isinstance(right, dict)
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, float):
        assert isinstance(right, float)
        return left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


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


@st.composite
def buried(draw: st.DrawFn) -> tuple[object, str]:
    """A non-JSON value at some depth inside JSON containers, and the path that leads to it."""
    value: object = draw(not_json)
    path = ""
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):
            before = draw(st.lists(json_values, max_size=2))
            value = [*before, value]
            path = f"[{len(before)}]{path}"
        else:
            key = draw(keys)
            value = {key: value}
            path = f"[{key!r}]{path}"
    return value, path


@settings(max_examples=300)
@given(buried())
def test_anything_else_is_refused_naming_its_path(case: tuple[object, str]) -> None:
    value, path = case
    with pytest.raises(TypeError, match=r"^Unsupported") as caught:
        encode_value(value, "args[0]")
    # A bad value is named by its path; a bad key by the path of the mapping holding it, which
    # is where the buried value sits too.
    assert f"args[0]{path}" in str(caught.value)
