"""Aligned plain-text tables for the command line."""

from __future__ import annotations

from collections.abc import Sequence

from .terminal import printable


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[object]], *, right: Sequence[int] = ()
) -> list[str]:
    """Return the lines of a table: a header, then one line per row, columns padded to fit.

    Columns whose index is in `right` are right-aligned (numbers); the last column is not
    padded, so lines carry no trailing spaces.
    """
    # Cells may hold what a task wrote (a progress message): shown as text, never as controls.
    cells = [[printable(value) for value in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"a row has {len(row)} cells for {len(headers)} headers: {row!r}")
    widths = [
        max([len(header), *(len(row[i]) for row in cells)]) for i, header in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        padded = [
            value.rjust(width) if index in right else value.ljust(width)
            for index, (value, width) in enumerate(zip(values, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    return [line([header.upper() for header in headers]), *(line(row) for row in cells)]
