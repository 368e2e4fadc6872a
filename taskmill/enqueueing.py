"""Turning (task, args, kwargs) into TaskRecord rows: encoding, limits, unique keys."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models.base import ModelState
from django.tasks import TaskResult
from django.tasks.exceptions import TaskResultDoesNotExist

from .codec import JSON, encode_arguments, to_json_text
from .conf import get_settings
from .exceptions import ArgumentsTooLarge
from .ids import new_task_ids, parse_task_id
from .models import TaskRecord
from .states import State
from .task import TaskmillTask


def unique_key(
    task: TaskmillTask[..., Any], args: list[JSON], kwargs: dict[str, JSON]
) -> str | None:
    """Return the de-duplication key of a call, or None when the task isn't unique."""
    if task.unique is False:
        return None
    if task.unique is True:
        identity = json.dumps([args, kwargs], sort_keys=True, separators=(",", ":"))
    else:
        identity = str(task.unique(*args, **kwargs))
    # Hashed, so any key fits the column and keys of different tasks never collide.
    digest = hashlib.sha256(f"{task.module_path}\0{identity}".encode()).hexdigest()
    return digest


def _check_size(task: TaskmillTask[..., Any], args: list[JSON], kwargs: dict[str, JSON]) -> None:
    json_texts(task, args, kwargs)


def json_texts(
    task: TaskmillTask[..., Any],
    args: list[JSON],
    kwargs: dict[str, JSON],
    *,
    limit: int | None = None,
) -> tuple[str, str]:
    """Return encoded arguments as the args and kwargs columns store them; `limit` is
    MAX_ARGUMENT_BYTES, read from the settings unless given.

    Raise ArgumentsTooLarge if they take more than MAX_ARGUMENT_BYTES.
    """
    if limit is None:
        limit = get_settings().MAX_ARGUMENT_BYTES
    # Measured as stored: the columns' encoder, so the limit is the size written to the row.
    # No arguments (kwargs most often) are the same text every time: no need to encode it.
    args_text = to_json_text(args) if args else "[]"
    kwargs_text = to_json_text(kwargs) if kwargs else "{}"
    size = _utf8_length(args_text) + _utf8_length(kwargs_text)
    if size > limit:
        raise ArgumentsTooLarge(
            f"The arguments of {task.module_path} take {size} bytes as JSON, over "
            f"TASKMILL['MAX_ARGUMENT_BYTES'] ({limit}); store large data in a model or file "
            "and pass its id or path instead."
        )
    return args_text, kwargs_text


def _utf8_length(text: str) -> int:
    # Most arguments are ASCII, where characters are bytes: no need to encode a copy.
    return len(text) if text.isascii() else len(text.encode())


@dataclass(frozen=True, slots=True, kw_only=True)
class EncodedCalls:
    """Many calls of one task encoded: their arguments as results show them, and as the args
    and kwargs columns store them (JSON text), in the order of the calls."""

    args: list[list[JSON]]
    kwargs: list[dict[str, JSON]]
    args_texts: list[str]
    kwargs_texts: list[str]


def encode_calls(
    task: TaskmillTask[..., Any], calls: Iterable[tuple[Sequence[object], Mapping[str, object]]]
) -> EncodedCalls:
    """Encode every call of a task, all of them before anything is written.

    Raise TypeError or ArgumentsTooLarge starting with the call it is in (calls[3]).
    """
    encoded = EncodedCalls(args=[], kwargs=[], args_texts=[], kwargs_texts=[])
    limit = get_settings().MAX_ARGUMENT_BYTES
    add_args, add_kwargs = encoded.args.append, encoded.kwargs.append
    add_args_text, add_kwargs_text = encoded.args_texts.append, encoded.kwargs_texts.append
    for index, (args, kwargs) in enumerate(calls):
        try:
            encoded_args, encoded_kwargs = encode_arguments(args, kwargs)
            args_text, kwargs_text = json_texts(task, encoded_args, encoded_kwargs, limit=limit)
        except (TypeError, ArgumentsTooLarge) as error:
            raise type(error)(f"calls[{index}]: {error}") from error
        add_args(encoded_args)
        add_kwargs(encoded_kwargs)
        add_args_text(args_text)
        add_kwargs_text(kwargs_text)
    return encoded


def dependency_ids(task: TaskmillTask[..., Any]) -> list[str]:
    """Return the result ids a task depends on, in canonical form.

    Raise TaskResultDoesNotExist for an id that can't name any result, as get_result() does.
    """
    ids = []
    for dependency in task.depends_on:
        given = dependency.id if isinstance(dependency, TaskResult) else dependency
        parsed = parse_task_id(given)
        if parsed is None:
            raise TaskResultDoesNotExist(
                f"depends_on names {given!r}, which is not a Taskmill result id."
            )
        ids.append(str(parsed))
    return ids


def build_record(
    task: TaskmillTask[..., Any],
    args: Sequence[object],
    kwargs: Mapping[str, object],
    *,
    database_alias: str,
    now: datetime,
) -> TaskRecord:
    """Return an unsaved record for one call; raise TypeError for arguments JSON can't hold."""
    encoded_args, encoded_kwargs = encode_arguments(args, kwargs)
    _check_size(task, encoded_args, encoded_kwargs)
    record = TaskRecord(
        backend=task.backend,
        task_path=task.module_path,
        queue_name=task.queue_name,
        priority=task.priority,
        state=State.READY,
        args=encoded_args,
        kwargs=encoded_kwargs,
        options=task.stored_options(),
        enqueued_at=now,
        run_after=task.run_after or now,
        unique_key=unique_key(task, encoded_args, encoded_kwargs),
    )
    if task.for_object is not None:
        manager = ContentType.objects.db_manager(database_alias)
        record.content_type = manager.get_for_model(task.for_object)
        record.object_id = str(task.for_object.pk)
    return record


def build_records(
    task: TaskmillTask[..., Any],
    calls: Iterable[tuple[Sequence[object], Mapping[str, object]]],
    *,
    database_alias: str,
    now: datetime,
    name_calls: bool = False,
) -> list[TaskRecord]:
    """Return unsaved records for many calls of one task, as build_record() makes each.

    The first is built in full; the others are clones of it with their own id and
    arguments: constructing a model instance costs more than the rest of an enqueue. With
    `name_calls`, a TypeError or ArgumentsTooLarge starts with the call it is in (calls[3]).
    """
    records: list[TaskRecord] = []
    for index, (args, kwargs) in enumerate(calls):
        try:
            records.append(_build_next(task, args, kwargs, records, database_alias, now))
        except (TypeError, ArgumentsTooLarge) as error:
            if not name_calls:
                raise
            raise type(error)(f"calls[{index}]: {error}") from error
    # Made after the first record's, so the ids still sort in the order of the calls.
    others = records[1:]
    for record, task_id in zip(others, new_task_ids(len(others)), strict=True):
        record.id = task_id
    return records


def _build_next(
    task: TaskmillTask[..., Any],
    args: Sequence[object],
    kwargs: Mapping[str, object],
    built: list[TaskRecord],
    database_alias: str,
    now: datetime,
) -> TaskRecord:
    if not built:
        return build_record(task, args, kwargs, database_alias=database_alias, now=now)
    encoded_args, encoded_kwargs = encode_arguments(args, kwargs)
    _check_size(task, encoded_args, encoded_kwargs)
    record = _clone(built[0])  # its own id is set by build_records
    record.args = encoded_args
    record.kwargs = encoded_kwargs
    record.unique_key = unique_key(task, encoded_args, encoded_kwargs)
    # Fresh containers for what a record's life changes; the task's options are the same for
    # every call, and nothing changes them.
    record.worker_ids = []
    record.errors = []
    record.handed_back = []
    return record


def _clone(record: TaskRecord) -> TaskRecord:
    """Return an unsaved copy of record with a state of its own, as copy.copy() makes one.

    copy.copy() goes through Model.__reduce__ (pickling's path: a version stamp, a scan for
    memoryviews), which costs more than the rest of a bulk enqueue's row.
    """
    clone = TaskRecord.__new__(TaskRecord)
    clone.__dict__.update(record.__dict__)
    state = ModelState()
    state.db, state.adding = record._state.db, record._state.adding
    # The related objects fetched for the original (its content type) stay valid for a copy.
    state.fields_cache = dict(record._state.fields_cache)
    clone._state = state
    return clone
