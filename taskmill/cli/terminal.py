"""Text from tasks made safe to print on an operator's terminal.

A task controls its output, arguments, result, error messages and progress message. Printed
as they are, escape sequences in them could move the cursor, rewrite earlier lines, retitle
the window or (on some terminals) answer back, and bidirectional-override characters could
make a line read differently from what it holds. Every such character is shown as its
Python escape instead (`\\x1b`, `\\r`, `\\u202e`), so what the operator sees is the text.
"""

from __future__ import annotations

import re
from typing import Final

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode bidirectional marks,
# embeddings, overrides and isolates ("Trojan Source", CVE-2021-42574).
_CONTROLS: Final = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE: Final = re.compile(f"[{_CONTROLS}]")
_UNSAFE_OR_NEWLINE: Final = re.compile(f"[{_CONTROLS}\\n]")

_NAMED: Final = {"\n": "\\n", "\r": "\\r"}


def _escape(found: re.Match[str]) -> str:
    character = found.group()
    if character in _NAMED:
        return _NAMED[character]
    code = ord(character)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object, *, keep_newlines: bool = False) -> str:
    """Return str(text) with terminal control characters shown as escapes.

    Tabs are kept; newlines too with `keep_newlines` (a traceback), else shown as `\\n`,
    so one value can't pass for several lines of the command's own output.
    """
    pattern = _UNSAFE if keep_newlines else _UNSAFE_OR_NEWLINE
    return pattern.sub(_escape, str(text))
