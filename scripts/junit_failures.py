"""Print each failed or errored test of the given JUnit XML files, with its message and the
end of its details and captured output.

`scripts/test` prints this just before its summary: a CI log is often read from its end, and
a flaky failure is only worth as much as what it said about itself.
"""

import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Final

# Per failure: enough to see the assertion and what a worker last logged, not the whole run.
DETAIL_LINES: Final = 60
OUTPUT_LINES: Final = 80
STREAMS: Final = ("system-out", "system-err")
# pytest heads each captured stream with a line like "----- Captured Out -----".
SECTION_HEAD: Final = re.compile(r"^-+ Captured .* -+$", re.MULTILINE)


def _tail(text: str, lines: int) -> str:
    kept = text.rstrip().splitlines()
    skipped = len(kept) - lines
    head = [f"[... {skipped} lines above ...]"] if skipped > 0 else []
    return "\n".join(head + kept[-lines:])


def _without_empty_sections(captured: str) -> str:
    """Drop the captured-stream sections that hold nothing but their heading."""
    heads = list(SECTION_HEAD.finditer(captured))
    kept = []
    for head, after in zip(heads, [*heads[1:], None], strict=True):
        body = captured[head.end() : after.start() if after else len(captured)]
        if body.strip():
            kept.append(head.group() + "\n" + body.strip())
    return "\n".join(kept)


def describe(path: Path) -> list[str]:
    """Return one block of text per failed or errored test case in the file at `path`."""
    try:
        root = ET.parse(path).getroot()  # noqa: S314 - written by our own pytest run
    except (OSError, ET.ParseError):
        return []
    blocks = []
    for case in root.iter("testcase"):
        for problem in [*case.findall("failure"), *case.findall("error")]:
            name = f"{case.get('classname', '')}::{case.get('name', '')}"
            parts = [f"--- {problem.tag}: {name}", problem.get("message", "")]
            parts.append(_tail(problem.text or "", DETAIL_LINES))
            captured = "".join(
                node.text or "" for stream in STREAMS for node in case.findall(stream)
            )
            if kept := _without_empty_sections(captured):
                parts.append(_tail(kept, OUTPUT_LINES))
            blocks.append("\n".join(parts))
    return blocks


def main(paths: list[str]) -> None:
    blocks = [block for path in paths for block in describe(Path(path))]
    if blocks:
        print("\n\n".join(blocks))  # noqa: T201 - this script's output is the report


if __name__ == "__main__":
    main(sys.argv[1:])
