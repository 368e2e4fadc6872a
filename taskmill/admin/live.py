"""The task page's live log: what a task stored since a cursor, as JSON, for the page's script.

The script joins the chunks into lines itself and inserts them as text nodes, never as HTML.
"""

from __future__ import annotations

from typing import Any, Final

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from ..models import LogChunk, TaskRecord
from ..output import FOLLOW_BATCH_SIZE, LogReader, Progress
from ..routers import queue_databases
from .display import STATE_COLOURS, STREAM_STYLES

START: Final = (0, -1)  # before the first chunk of the first attempt

# <, > and & as JSON escapes: the same data, but no markup even if a browser or a proxy
# ignores the content type and sniffs the body as HTML (what Django's json_script does).
_MARKUP_ESCAPES: Final = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


class MarkupFreeJSONEncoder(DjangoJSONEncoder):
    """JSON whose text holds no `<`, `>` or `&`: task output can't read as a tag anywhere."""

    def encode(self, o: Any) -> str:
        return super().encode(o).translate(_MARKUP_ESCAPES)


def parse_cursor(text: str | None) -> tuple[int, int]:
    """Read an `<attempt>:<seq>` cursor. Raise ValueError if it is malformed."""
    if not text:
        return START
    attempt, _, seq = text.partition(":")
    return int(attempt), int(seq)


def format_cursor(cursor: tuple[int, int]) -> str:
    return f"{cursor[0]}:{cursor[1]}"


def log_since(record: TaskRecord, after: tuple[int, int]) -> dict[str, Any]:
    """Return the task's state, progress and the chunks stored after `after`."""
    reader = LogReader(record._state.db or queue_databases()[0], record.id, after=after)
    reader.refresh()
    batch = reader.read_batch()
    more = len(batch) == FOLLOW_BATCH_SIZE
    state = reader.state or "deleted"
    return {
        "state": str(state),
        "colour": STATE_COLOURS.get(state, "#6c757d"),
        "finished": reader.finished and not more,
        "more": more,
        "cursor": format_cursor(reader.cursor),
        "progress": progress_json(reader.progress),
        "chunks": [chunk_json(chunk) for chunk in batch],
    }


def chunk_json(chunk: LogChunk) -> dict[str, Any]:
    return {
        "attempt": chunk.attempt,
        "stream": chunk.stream,
        "style": STREAM_STYLES.get(chunk.stream, ""),
        "text": chunk.text,
        "time": timezone.localtime(chunk.created_at).strftime("%H:%M:%S.%f")[:-3],
    }


def progress_json(progress: Progress | None) -> dict[str, Any] | None:
    if progress is None:
        return None
    return {
        "done": progress.done,
        "total": progress.total,
        "percent": None if progress.percent is None else round(progress.percent),
        "message": progress.message,
    }
