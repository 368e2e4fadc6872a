"""Values in PostgreSQL COPY's text format: what the bulk enqueue writes straight to COPY.

Rows of one enqueue_many() share all but three values: the shared ones are written out once as
the end of every line, so a row costs its id, its arguments and a string join
(psycopg's write_row() formats and escapes every value of every row).
"""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Final
from uuid import UUID

NULL: Final = "\\N"
# COPY's text format reads a backslash as an escape and tab, newline and carriage return as
# separators: each is written as its escape (https://www.postgresql.org/docs/current/sql-copy.html).
_ESCAPES: Final = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def escaped(text: str) -> str:
    """Return text as one COPY text-format field."""
    return text.translate(_ESCAPES)


def escaped_json(text: str) -> str:
    """Return JSON text as one COPY text-format field.

    JSON text never holds a raw control character (RFC 8259 section 7 has them escaped), so
    a backslash is the only character to escape: a cheap test, a rare replace.
    """
    return text.replace("\\", "\\\\") if "\\" in text else text


def field_text(value: object) -> str:
    """Return a prepared parameter value as one COPY text-format field, as PostgreSQL reads
    the same value bound to the column (None is NULL).

    Raise TypeError for a type without a known text form.
    """
    match value:
        case None:
            return NULL
        case bool():
            return "t" if value else "f"
        case int() | float() | Decimal() | UUID():
            return str(value)
        case datetime() | date() | time():
            # ISO 8601 with its offset, as psycopg writes a datetime: read in the same zone.
            return value.isoformat()
        case str():
            return escaped(value)
    raise TypeError(f"No COPY text form for {type(value).__name__} value {value!r}.")


def line_tail(values: list[object]) -> str:
    """Return the fields of `values`, tab-separated, ending the line."""
    return "\t".join(field_text(value) for value in values) + "\n"
