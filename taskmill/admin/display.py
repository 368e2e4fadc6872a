"""HTML pieces the admin shows for task records (state badges, progress bars, logs, JSON),
and the read-only mixin its pages share.

Everything user-provided is escaped by format_html; the admin pages only assemble these.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from ..output import LogLine, Progress
from ..states import State

EMPTY: Final = "-"

STATE_COLOURS: Final[dict[str, str]] = {
    State.BLOCKED: "#6c757d",
    State.READY: "#0d6efd",
    State.RUNNING: "#fd7e14",
    State.SUCCEEDED: "#198754",
    State.FAILED: "#dc3545",
    State.CANCELLED: "#6f42c1",
}

# Each stream gets a look of its own; stdout is plain.
STREAM_STYLES: Final = {
    "stdout": "",
    "stderr": "color: #b02a37;",
    "log": "color: #4d5154;",
    "marker": "background: #fff3cd; color: #664d03; font-weight: bold;",
}

PRE_STYLE: Final = "white-space: pre-wrap; max-height: 40em; overflow: auto; margin: 0;"


def state_badge(state: str) -> SafeString:
    """Return the state as a coloured badge."""
    colour = STATE_COLOURS.get(state, "#6c757d")
    return format_html(
        '<span class="taskmill-state taskmill-state-{}" style="background: {}; color: #fff; '
        'padding: 1px 6px; border-radius: 8px; white-space: nowrap;">{}</span>',
        state,
        colour,
        state,
    )


def progress_bar(progress: Progress | None) -> SafeString | str:
    """Return progress as a bar with its percentage and message, or a dash if none."""
    if progress is None:
        return EMPTY
    percent = progress.percent
    if percent is None:
        return format_html("{} done {}", f"{progress.done:g}", progress.message)
    return format_html(
        '<progress max="100" value="{}" title="{} of {}"></progress> {}% {}',
        f"{percent:.0f}",
        f"{progress.done:g}",
        f"{progress.total:g}",
        f"{percent:.0f}",
        progress.message,
    )


def pretty_json(value: Any) -> SafeString:
    """Return a JSON value indented in a preformatted block."""
    return format_html(
        '<pre style="{}">{}</pre>', PRE_STYLE, json.dumps(value, indent=2, sort_keys=True)
    )


def errors_block(errors: Sequence[dict[str, Any]]) -> SafeString | str:
    """Return each stored error: its attempt, exception class and traceback."""
    if not errors:
        return EMPTY
    return format_html_join(
        "",
        '<p><strong>attempt {}: {}</strong></p><pre style="{}">{}</pre>',
        (
            (
                error.get("attempt", "?"),
                error.get("exception_class_path", ""),
                PRE_STYLE,
                error.get("traceback", ""),
            )
            for error in errors
        ),
    )


def log_block(
    lines: Sequence[LogLine],
    *,
    omitted: int = 0,
    live: Mapping[str, str] | None = None,
    unfinished: Sequence[LogLine] = (),
) -> SafeString | str:
    """Return log lines as preformatted text: time, stream tag and text, each stream styled,
    with a heading where a new attempt begins.

    `live` adds data- attributes for the page's script, which appends what comes next; the
    `unfinished` lines (among `lines`, still waiting for their newline) are marked so that
    the script replaces each with the whole line once its end arrives.
    """
    waiting = {id(line) for line in unfinished}
    if not lines and live is None:
        return "No output captured."
    rows = []
    attempt = 1
    if omitted:
        rows.append(
            format_html(
                "<em>{} earlier lines not shown; <code>manage.py taskmill logs</code> prints "
                "them all.</em>\n",
                omitted,
            )
        )
    for line in lines:
        if line.attempt != attempt:
            attempt = line.attempt
            rows.append(format_html("<strong>--- attempt {} ---</strong>\n", attempt))
        tag = "" if line.stream == "stdout" else f"[{line.stream}] "
        partial = ""
        if id(line) in waiting:
            partial = format_html(
                ' data-partial="{}:{}" data-text="{}"', line.attempt, line.stream, line.text
            )
        rows.append(
            format_html(
                '<span class="taskmill-log-{}" style="{}"{}>{}  {}{}</span>\n',
                line.stream,
                STREAM_STYLES.get(line.stream, ""),
                partial,
                timezone.localtime(line.time).strftime("%H:%M:%S.%f")[:-3],
                tag,
                line.text,
            )
        )
    attributes = format_html_join("", ' data-{}="{}"', sorted((live or {}).items()))
    # Every row was built by format_html, so the joined text is safe as it is.
    return format_html(
        '{}<pre class="taskmill-log" style="{}"{} data-attempt="{}">{}</pre>',
        "" if lines else "No output captured yet.",
        PRE_STYLE,
        attributes,
        lines[-1].attempt if lines else 1,
        SafeString("".join(rows)),
    )


class ReadOnlyAdminMixin:
    """Viewing only: no add, change or delete through the admin."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
