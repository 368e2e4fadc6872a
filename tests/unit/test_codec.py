"""The codec: JSON arguments and results, model instances by reference, refusals naming the path."""

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db.models import Model

from taskmill.codec import (
    JSON,
    MODEL_KEY,
    PK_KEY,
    TolerantJSONDecoder,
    UndecodableJSON,
    decode_arguments,
    decode_value,
    encode_arguments,
    encode_return_value,
    encode_value,
    is_model_reference,
)
from tests.testapp.models import Article, Token

TOKEN_ID = uuid.UUID("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b")


class FakeResolver:
    """Records every (label, pk) it is asked for and answers with a made-up instance."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, JSON]] = []

    def __call__(self, label: str, pk: JSON) -> Model:
        self.calls.append((label, pk))
        if label == "testapp.token":
            return Token(id=uuid.UUID(str(pk)), label="resolved")
        assert isinstance(pk, int)
        return Article(pk=pk, title=f"resolved {pk}")


def refuse_resolving(label: str, pk: JSON) -> Model:
    raise AssertionError(f"nothing should be resolved, asked for {label} {pk!r}")


# --- encoding plain JSON ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [None, True, False, 0, -7, 2**62, 1.5, "", "text", "ünïcödé ✓", [], {}],
    ids=repr,
)
def test_encode_value__json_scalars_and_empty_containers_pass_unchanged(value: object) -> None:
    assert encode_value(value, "args[0]") == value


def test_encode_value__nested_structures_are_kept_with_their_shape() -> None:
    value = {"a": [1, {"b": [True, None, "x"]}], "c": {"d": {"e": 2.5}}}

    encoded = encode_value(value, "kwargs['data']")

    assert encoded == value
    assert json.loads(json.dumps(encoded)) == value


def test_encode_value__tuples_become_lists_at_every_depth() -> None:
    encoded = encode_value((1, (2, (3,)), {"t": (4, 5)}), "args[0]")

    assert encoded == [1, [2, [3]], {"t": [4, 5]}]
    assert isinstance(encoded, list)


def test_encode_arguments__returns_a_list_and_a_dict() -> None:
    args, kwargs = encode_arguments((1, "two"), {"three": [3]})

    assert args == [1, "two"]
    assert kwargs == {"three": [3]}
    assert type(args) is list
    assert type(kwargs) is dict


# --- model instances by reference -------------------------------------------------------------


def test_encode_value__model_instance_with_int_pk_becomes_a_reference() -> None:
    encoded = encode_value(Article(pk=42, title="ignored"), "args[0]")

    assert encoded == {MODEL_KEY: "testapp.article", PK_KEY: 42}


def test_encode_value__model_instance_with_uuid_pk_becomes_a_reference_with_text_pk() -> None:
    encoded = encode_value(Token(id=TOKEN_ID, label="ignored"), "kwargs['token']")

    assert encoded == {MODEL_KEY: "testapp.token", PK_KEY: str(TOKEN_ID)}
    # The reference itself is plain JSON.
    assert json.loads(json.dumps(encoded)) == encoded


def test_encode_value__model_instances_nested_in_containers_are_references() -> None:
    encoded = encode_value({"articles": [Article(pk=1), Article(pk=2)]}, "kwargs['batch']")

    assert encoded == {
        "articles": [
            {MODEL_KEY: "testapp.article", PK_KEY: 1},
            {MODEL_KEY: "testapp.article", PK_KEY: 2},
        ]
    }


def test_encode_value__unsaved_instance_is_refused_naming_the_path() -> None:
    with pytest.raises(TypeError, match=r"^Unsupported value for kwargs\['article'\]") as caught:
        encode_arguments((), {"article": Article(title="draft")})

    message = str(caught.value)
    assert "not saved" in message
    assert "save it before enqueueing" in message


def test_is_model_reference__only_the_exact_two_key_shape_counts() -> None:
    assert is_model_reference({MODEL_KEY: "testapp.article", PK_KEY: 1})
    assert not is_model_reference({MODEL_KEY: "testapp.article"})
    assert not is_model_reference({MODEL_KEY: "testapp.article", PK_KEY: 1, "extra": 0})
    assert not is_model_reference({"pk": 1})
    assert not is_model_reference([MODEL_KEY, PK_KEY])


# --- refusals name the path and start with "Unsupported" --------------------------------------


@pytest.mark.parametrize(
    ("value", "type_name", "hint"),
    [
        (datetime(2030, 1, 1, tzinfo=UTC), "datetime.datetime", "isoformat()"),
        (date(2030, 1, 1), "datetime.date", "isoformat()"),
        (time(12, 30), "datetime.time", "isoformat()"),
        (timedelta(seconds=5), "datetime.timedelta", "total_seconds()"),
        (Decimal("1.5"), "decimal.Decimal", "str(value)"),
        (TOKEN_ID, "uuid.UUID", "str(value)"),
        ({1, 2}, "builtins.set", "sorted list"),
        (frozenset({1}), "builtins.frozenset", "sorted list"),
        (b"raw", "builtins.bytes", "base64"),
        (bytearray(b"raw"), "builtins.bytearray", "JSON values"),
        (object(), "builtins.object", "JSON values"),
        (len, "builtins.builtin_function_or_method", "JSON values"),
    ],
    ids=lambda value: type(value).__name__ if not isinstance(value, str) else value,
)
def test_encode_arguments__unsupported_type_names_kwarg_path_type_and_fix(
    value: object, type_name: str, hint: str
) -> None:
    with pytest.raises(TypeError) as caught:
        encode_arguments((), {"when": value})

    message = str(caught.value)
    assert message.startswith(f"Unsupported type {type_name} for kwargs['when']:")
    assert hint in message


def test_encode_arguments__unsupported_positional_argument_names_its_index() -> None:
    with pytest.raises(TypeError, match=r"^Unsupported type decimal\.Decimal for args\[2\]:"):
        encode_arguments((1, "ok", Decimal("3")), {})


def test_encode_arguments__unsupported_value_deep_inside_names_the_full_path() -> None:
    value = {"rows": [{"id": 1}, {"id": 2, "seen": {1, 2}}]}

    with pytest.raises(TypeError) as caught:
        encode_arguments((), {"payload": value})

    assert str(caught.value).startswith(
        "Unsupported type builtins.set for kwargs['payload']['rows'][1]['seen']:"
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")], ids=repr)
def test_encode_arguments__nan_and_infinity_are_refused_naming_the_path(value: float) -> None:
    with pytest.raises(TypeError) as caught:
        encode_arguments(([0.5, value],), {})

    message = str(caught.value)
    assert message.startswith(f"Unsupported value {value!r} for args[0][1]:")
    assert "NaN or infinity" in message


@pytest.mark.parametrize("key", [1, 2.5, None, ("a", "b")], ids=repr)
def test_encode_arguments__non_str_mapping_keys_are_refused_naming_the_path(key: object) -> None:
    with pytest.raises(TypeError) as caught:
        encode_arguments((), {"data": {"ok": 1, key: 2}})

    message = str(caught.value)
    assert message.startswith(f"Unsupported key {key!r} ({type(key).__name__}) in kwargs['data']:")
    assert "str()" in message


def test_encode_arguments__non_str_keyword_names_are_refused() -> None:
    # enqueue_many() takes kwargs as plain mappings, so they can carry any key.
    kwargs: Mapping[object, object] = {1: "one"}

    with pytest.raises(TypeError, match=r"^Unsupported key 1 \(int\) in kwargs:"):
        encode_arguments((), kwargs)  # type: ignore[arg-type]  # the mistake under test


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("before\x00after", "NUL character"),
        ("\x00", "NUL character"),
        ("half \ud800 pair", "lone surrogate ('\\ud800')"),
        ("\udfff", "lone surrogate ('\\udfff')"),
    ],
    ids=["nul inside", "nul alone", "high surrogate", "low surrogate"],
)
def test_encode_arguments__text_no_database_can_store_is_refused_naming_the_path(
    text: str, problem: str
) -> None:
    # PostgreSQL's jsonb refuses both, MariaDB's JSON check lone surrogates: refused everywhere.
    with pytest.raises(TypeError) as caught:
        encode_arguments((), {"note": ["ok", text]})

    message = str(caught.value)
    assert message.startswith("Unsupported value for kwargs['note'][1]: text with a ")
    assert problem in message


def test_encode_arguments__mapping_key_no_database_can_store_is_refused() -> None:
    with pytest.raises(TypeError, match=r"^Unsupported key 'a\\x00' in args\[0\]: text with a NUL"):
        encode_arguments(({"a\x00": 1},), {})


@pytest.mark.parametrize("text", ["ünïcödé", "emoji 😀", "tab\tnewline\n", "\u2028", "\x7f"])
def test_encode_arguments__any_other_unicode_text_passes(text: str) -> None:
    assert encode_arguments((text,), {text: text}) == ([text], {text: text})


def test_encode_arguments__reserved_model_key_in_user_data_is_refused() -> None:
    data = {MODEL_KEY: "testapp.article", PK_KEY: 1}

    with pytest.raises(TypeError) as caught:
        encode_arguments(([data],), {})

    message = str(caught.value)
    assert message.startswith(f"Unsupported key {MODEL_KEY!r} in args[0][0]:")
    assert "reserved" in message


def test_encode_return_value__refusal_names_the_return_value() -> None:
    with pytest.raises(
        TypeError, match=r"^Unsupported type datetime\.date for the return value\['day'\]:"
    ):
        encode_return_value({"day": date(2030, 1, 1)})


def test_encode_return_value__json_passes_and_models_become_references() -> None:
    assert encode_return_value({"n": 1, "article": Article(pk=5)}) == {
        "n": 1,
        "article": {MODEL_KEY: "testapp.article", PK_KEY: 5},
    }


# --- decoding ---------------------------------------------------------------------------------


def test_decode_value__plain_json_comes_back_unchanged_without_resolving() -> None:
    value: JSON = {"a": [1, 2.5, None, True, "x", {"b": []}]}

    assert decode_value(value, refuse_resolving) == value


def test_decode_arguments__references_are_resolved_through_the_injected_resolver() -> None:
    resolver = FakeResolver()
    args, kwargs = encode_arguments(
        (Article(pk=7), [Article(pk=8)]), {"token": Token(id=TOKEN_ID), "n": 3}
    )

    decoded_args, decoded_kwargs = decode_arguments(args, kwargs, resolver)

    assert resolver.calls == [
        ("testapp.article", 7),
        ("testapp.article", 8),
        ("testapp.token", str(TOKEN_ID)),
    ]
    first, nested = decoded_args
    assert isinstance(first, Article)
    assert first.pk == 7
    assert first.title == "resolved 7"
    assert isinstance(nested, list)
    assert isinstance(nested[0], Article)
    assert nested[0].pk == 8
    token = decoded_kwargs["token"]
    assert isinstance(token, Token)
    assert token.pk == TOKEN_ID
    assert decoded_kwargs["n"] == 3


def test_decode_value__reference_with_non_text_label_is_malformed() -> None:
    with pytest.raises(ValueError, match="Malformed model reference"):
        decode_value({MODEL_KEY: 5, PK_KEY: 1}, refuse_resolving)


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ({"a": 1}, {}, "Stored args must be a JSON list, found dict"),
        ([], [], "Stored kwargs must be a JSON object, found list"),
        (None, {}, "Stored args must be a JSON list, found NoneType"),
    ],
)
def test_decode_arguments__wrong_stored_shapes_raise_value_error(
    args: JSON, kwargs: JSON, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        decode_arguments(args, kwargs, refuse_resolving)


def test_encode_then_decode__round_trips_through_json_text() -> None:
    resolver = FakeResolver()
    original_args = (1, "two", [3.0, None], {"four": {"five": True}})
    encoded_args, encoded_kwargs = encode_arguments(original_args, {"article": Article(pk=9)})
    stored_args = json.loads(json.dumps(encoded_args))
    stored_kwargs = json.loads(json.dumps(encoded_kwargs))

    args, kwargs = decode_arguments(stored_args, stored_kwargs, resolver)

    assert args == [1, "two", [3.0, None], {"four": {"five": True}}]
    article = kwargs["article"]
    assert isinstance(article, Article)
    assert article.pk == 9


@pytest.mark.parametrize(
    "text",
    ['{"a": [1, 2.5, null]}', "[]", '"x"', "3", " [1] ", "[1]\n", '\t{"b": true}', "null"],
)
def test_tolerant_decoder__reads_valid_json_as_json_loads_does(text: str) -> None:
    decoded = json.loads(text, cls=TolerantJSONDecoder)
    assert decoded == json.loads(text)
    assert not isinstance(decoded, UndecodableJSON)


@pytest.mark.parametrize("text", ["[1.]", "[1] [2]", "[1] x", "", "  ", "{", "NaN!"])
def test_tolerant_decoder__keeps_invalid_text_with_the_parser_error(text: str) -> None:
    decoded = json.loads(text, cls=TolerantJSONDecoder)
    assert isinstance(decoded, UndecodableJSON)
    assert decoded == text
    with pytest.raises(json.JSONDecodeError) as raised:
        json.loads(text)
    assert decoded.error == str(raised.value)
