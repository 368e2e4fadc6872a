"""JSON encoding of task arguments and return values, with model instances by reference.

Pure: references are resolved by a function the caller injects, so this module never queries
the database. Every refusal is a TypeError naming the exact argument path.
"""

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

from django.db.models import Model

type JSON = bool | int | float | str | list[JSON] | dict[str, JSON] | None
type Resolver = Callable[[str, JSON], Model]

MODEL_KEY: Final = "__taskmill_model__"
PK_KEY: Final = "pk"

_HINTS: Final[list[tuple[type | tuple[type, ...], str]]] = [
    ((datetime, date, time), "pass value.isoformat() and parse it in the task"),
    (timedelta, "pass value.total_seconds()"),
    ((Decimal, UUID), "pass str(value)"),
    ((set, frozenset), "pass a sorted list"),
    (bytes, "pass text, or base64-encode binary data"),
]


def _hint(value: object) -> str:
    for kinds, hint in _HINTS:
        if isinstance(value, kinds):
            return hint
    return (
        "pass JSON values (dict with str keys, list, str, int, float, bool, None) "
        "or a saved model instance"
    )


def _unsupported(value: object, path: str) -> TypeError:
    kind = type(value)
    return TypeError(
        f"Unsupported type {kind.__module__}.{kind.__qualname__} for {path}: "
        f"task arguments and results must be JSON; {_hint(value)}."
    )


def model_label(model: type[Model]) -> str:
    """Return 'app_label.model_name' for a model class."""
    return model._meta.label_lower


def encode_model(instance: Model, path: str) -> dict[str, JSON]:
    """Encode a saved model instance as a reference to its row."""
    if instance.pk is None:
        raise TypeError(
            f"Unsupported value for {path}: the {type(instance).__name__} instance is not "
            "saved (its pk is None); save it before enqueueing, so the task can fetch it."
        )
    pk = instance.pk
    if not isinstance(pk, int | str):
        pk = str(pk)
    return {MODEL_KEY: model_label(type(instance)), PK_KEY: pk}


def _check_text(text: str, where: str) -> None:
    # Valid in Python and in JSON text, but PostgreSQL's jsonb refuses both, and MariaDB's
    # JSON check refuses lone surrogates: refused on every database alike, naming the path.
    if "\x00" in text:
        raise TypeError(
            f"Unsupported {where}: text with a NUL character (\\x00) can't be "
            "stored as JSON by every database; remove it, or base64-encode the text."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise TypeError(
            f"Unsupported {where}: text with a lone surrogate "
            f"({text[error.start]!r}) is not valid Unicode; decode the text it came from "
            "with errors='replace', or base64-encode the original bytes."
        ) from None


def encode_value(value: object, path: str) -> JSON:
    """Return value as JSON data; raise TypeError naming path if it can't be."""
    match value:
        case str():
            _check_text(value, f"value for {path}")
            return value
        case None | bool() | int():
            return value
        case float():
            if not math.isfinite(value):
                raise TypeError(
                    f"Unsupported value {value!r} for {path}: JSON has no NaN or infinity; "
                    "pass None or a string instead."
                )
            return value
        case Model():
            return encode_model(value, path)
        case Mapping():
            return _encode_mapping(value, path)
        case Sequence() if not isinstance(value, bytes | bytearray):
            return [encode_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    raise _unsupported(value, path)


def _encode_mapping(value: Mapping[Any, Any], path: str) -> dict[str, JSON]:
    encoded: dict[str, JSON] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            raise TypeError(
                f"Unsupported key {key!r} ({type(key).__name__}) in {path}: JSON object keys "
                "are strings; convert the keys with str() before enqueueing."
            )
        _check_text(key, f"key {key!r} in {path}")
        if key == MODEL_KEY:
            raise TypeError(
                f"Unsupported key {key!r} in {path}: it is reserved for model references; "
                "rename the key."
            )
        encoded[key] = encode_value(item, f"{path}[{key!r}]")
    return encoded


def encode_arguments(
    args: Sequence[object], kwargs: Mapping[str, object]
) -> tuple[list[JSON], dict[str, JSON]]:
    """Encode positional and keyword arguments; errors name e.g. kwargs['when']."""
    encoded_args = [encode_value(value, f"args[{index}]") for index, value in enumerate(args)]
    # Keyword names are checked like any mapping's keys: enqueue_many takes plain dicts.
    return encoded_args, _encode_mapping(kwargs, "kwargs")


def encode_return_value(value: object) -> JSON:
    """Encode what a task returned; raise TypeError naming the bad part."""
    return encode_value(value, "the return value")


def _float_text(value: float) -> str:
    if value == 0:
        # PostgreSQL's numeric has no negative zero: it gives -0.0 back as 0.0. Written as 0.0
        # everywhere, so every database gives back the same value (and -0.0 == 0.0 anyway).
        return "0.0"
    text = repr(value)
    if "e+" not in text:
        # Plain ("1.5") or a negative exponent ("5e-324"): numeric keeps these as floats, and
        # JSON text on SQLite and MariaDB keeps them as written.
        return text
    # PostgreSQL's jsonb stores numbers as numeric and writes 1e+16 back as
    # 10000000000000000, which reads as an int. Positional digits with a ".0" keep a scale, so
    # it comes back as 10000000000000000.0: the same float, since repr() gives the shortest
    # digits that read back exactly.
    return f"{Decimal(text):f}.0"


def _exact_text(value: object) -> str:
    match value:
        case float():
            if not math.isfinite(value):
                raise ValueError(f"Out of range float value {value!r} is not JSON.")
            return _float_text(value)
        case list() | tuple():
            return "[" + ", ".join(_exact_text(item) for item in value) + "]"
        case dict():
            items = (f"{json.dumps(key)}: {_exact_text(item)}" for key, item in value.items())
            return "{" + ", ".join(items) + "}"
    return json.dumps(value)


def to_json_text(value: JSON) -> str:
    """Write value as JSON text that every supported database gives back unchanged.

    As json.dumps(), except for floats written with a positive exponent (1e+16) and for -0.0,
    which PostgreSQL's jsonb would give back as an int or as 0.0.
    """
    text = json.dumps(value)
    # The exact writer is slower than json's C encoder: used only when the text may hold a
    # float that needs it (a string containing "e+" only costs the slower path).
    if "e+" in text or "-0.0" in text:
        return _exact_text(value)
    return text


class ExactJSONEncoder(json.JSONEncoder):
    """The encoder of the JSON columns holding arguments and return values (to_json_text)."""

    def encode(self, o: Any) -> str:
        return to_json_text(o)

    def iterencode(self, o: Any, _one_shot: bool = False) -> Iterator[str]:
        yield to_json_text(o)


class UndecodableJSON(str):
    """Text read from a JSON column that is not valid JSON; `error` says why."""

    error: str = ""


class TolerantJSONDecoder(json.JSONDecoder):
    """The decoder of TaskRecord's JSON columns: text that doesn't parse becomes UndecodableJSON.

    PostgreSQL's jsonb and SQLite's JSON_VALID() check refuse invalid JSON, but MariaDB's
    JSON_VALID() accepts some text Python can't read (`[1.]`). Raising while a row is read
    would stop the worker that claimed it (and every worker rescuing it after); the worker
    fails that row alone instead (row_checks).
    """

    def decode(self, s: str, *args: Any, **kwargs: Any) -> Any:
        # Most text is a JSON value from its first character to its last (as every database
        # writes it): raw_decode() alone reads it, without decode()'s two whitespace scans,
        # a third of the cost of reading each JSON column of each claimed row.
        try:
            value, end = self.raw_decode(s)
        except json.JSONDecodeError:
            pass
        else:
            if end == len(s):
                return value
        try:
            return super().decode(s, *args, **kwargs)
        except json.JSONDecodeError as error:
            text = UndecodableJSON(s)
            text.error = str(error)
            return text


def is_model_reference(value: JSON) -> bool:
    """Tell whether a decoded JSON value is a model reference made by encode_model."""
    return isinstance(value, dict) and set(value) == {MODEL_KEY, PK_KEY}


def decode_value(value: JSON, resolve: Resolver) -> object:
    """Turn model references back into instances, through resolve(label, pk)."""
    if isinstance(value, dict):
        if is_model_reference(value):
            label = value[MODEL_KEY]
            if not isinstance(label, str):
                raise ValueError(f"Malformed model reference {value!r}: the label is not text.")
            return resolve(label, value[PK_KEY])
        return {key: decode_value(item, resolve) for key, item in value.items()}
    if isinstance(value, list):
        return [decode_value(item, resolve) for item in value]
    return value


def decode_arguments(
    args: JSON, kwargs: JSON, resolve: Resolver
) -> tuple[list[object], dict[str, object]]:
    """Decode stored arguments; raise ValueError if the stored shapes are wrong."""
    if not isinstance(args, list):
        raise ValueError(f"Stored args must be a JSON list, found {type(args).__name__}.")
    if not isinstance(kwargs, dict):
        raise ValueError(f"Stored kwargs must be a JSON object, found {type(kwargs).__name__}.")
    return (
        [decode_value(item, resolve) for item in args],
        {key: decode_value(item, resolve) for key, item in kwargs.items()},
    )
