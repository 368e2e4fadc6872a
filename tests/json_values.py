"""Hypothesis strategies for JSON values and for what is not JSON, shared by the codec's unit
tests and the chaos tests that send such values through every database."""

import math
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from uuid import UUID

from hypothesis import strategies as st

from taskmill.codec import MODEL_KEY

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


def same(left: object, right: object, *, signed_zero: bool = True) -> bool:
    """Equality that tells 1 from 1.0 and True from 1, as JSON does; with signed_zero, -0.0
    from 0.0 too."""
    if type(left) is not type(right):
        return False
    if isinstance(left, list):
        assert isinstance(right, list)
        return len(left) == len(right) and all(
            same(a, b, signed_zero=signed_zero) for a, b in zip(left, right, strict=True)
        )
    if isinstance(left, dict):
        assert isinstance(right, dict)
        return left.keys() == right.keys() and all(
            same(left[k], right[k], signed_zero=signed_zero) for k in left
        )
    if isinstance(left, float):
        assert isinstance(right, float)
        sign_kept = not signed_zero or math.copysign(1, left) == math.copysign(1, right)
        return left == right and sign_kept
    return left == right
