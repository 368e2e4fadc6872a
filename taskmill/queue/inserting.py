"""The enqueue side of a Queue: inserting task rows (one, or many sharing their values), with
de-duplication by unique key and dependency links, and waking the workers that serve them.

Queue inherits it; dialects override its hooks (_insert_rows, _row_table, _insert_one_sql,
_prepared_insert_sql) to write rows their own fastest way.
"""

from __future__ import annotations

import itertools
from abc import ABC
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any, Final
from uuid import UUID

from django.db import IntegrityError, connections, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import Field
from django.utils import timezone

from ..models import TaskRecord
from ..states import ACTIVE_STATES, State
from .graph import INSERT_BATCH_SIZE, DependencyGraph
from .insert_rows import COPY_COLUMNS, Copies, PreparedColumns, prepared_columns, prepared_rows
from .prepared import PreparedInsert, VerbatimJSON

# A duplicate may finish (and free its unique key) between our failed INSERT and our SELECT;
# then inserting again succeeds. Three tries make a livelock practically impossible.
UNIQUE_INSERT_TRIES: Final = 3


class Inserting(ABC):
    """Insert task records into the queue of one database alias (Queue's enqueue side)."""

    database_alias: str
    graph: DependencyGraph

    @property
    def connection(self) -> BaseDatabaseWrapper:
        return connections[self.database_alias]

    # Set when a commit of this process made tasks ready (see take_made_ready).
    _made_ready: bool = False

    def notify(  # noqa: B027 - a hook for dialects
        self, queue_names: Iterable[str], later: Mapping[str, datetime] | None = None
    ) -> None:
        """Wake workers serving these queues once the current transaction commits, and tell
        those serving the queues in `later` when their new tasks fall due (the earliest).

        Polling finds every task anyway; dialects that can push a wake-up override this.
        """

    def made_ready(
        self, queue_names: Iterable[str], later: Mapping[str, datetime] | None = None
    ) -> None:
        """Tasks of these queues became ready in the current transaction, due now, and those
        of the queues in `later` will be due at the time given: wake the workers serving
        them, this process's included, once it commits."""
        names = set(queue_names)
        if not names and not later:
            return
        self.notify(names, later)
        if names:
            self._note_made_ready_on_commit()

    def made_ready_at(self, tasks: Iterable[tuple[str, datetime]]) -> None:
        """made_ready() for tasks given as (queue name, run_after): each queue is announced
        as due now, or at its earliest run_after if all of its tasks are due later."""
        now = timezone.now()
        names: set[str] = set()
        later: dict[str, datetime] = {}
        for queue_name, run_after in tasks:
            if run_after <= now:
                names.add(queue_name)
            elif queue_name not in later or run_after < later[queue_name]:
                later[queue_name] = run_after
        self.made_ready(names, later)

    def _made_ready_by(self, records: Iterable[TaskRecord]) -> None:
        """made_ready_at() for the ready ones of new records."""
        self.made_ready_at(
            (record.queue_name, record.run_after)
            for record in records
            if record.state == State.READY
        )

    def _note_made_ready_on_commit(self) -> None:
        transaction.on_commit(self._note_made_ready, using=self.database_alias)

    def _note_made_ready(self) -> None:
        self._made_ready = True

    def take_made_ready(self) -> bool:
        """Tell whether this process's writes through this queue made tasks ready since the
        last call (an insert, dependants released).

        A worker's own waiter doesn't see its own writes on every database (SQLite's
        data_version counts other connections' commits; MariaDB has no waiter), so a worker
        that made work ready itself (the leader's scheduled runs, a finished dependency's
        dependants) claims at once instead of at its next poll.
        """
        made, self._made_ready = self._made_ready, False
        return made

    def insert(
        self,
        records: Sequence[TaskRecord],
        dependencies: Sequence[Sequence[str]] = (),
    ) -> list[TaskRecord]:
        """Insert new records and their dependency links; return what now stands for each.

        dependencies[i] lists the result ids records[i] waits for; it sets the record's first
        state. A record whose unique key is held by an active task is not inserted; the
        active task's record is returned in its place.

        Raise TaskResultDoesNotExist if a dependency id names no task.
        """
        using = self.database_alias
        if len(records) == 1 and records[0].unique_key is None and not any(dependencies):
            # The common enqueue() in one statement: no transaction, no separate wake-up.
            self._insert_one(records[0])
            if records[0].state == State.READY and records[0].run_after <= timezone.now():
                self._note_made_ready_on_commit()
            return list(records)
        with transaction.atomic(using=using):
            linked = [
                self.graph.lock_dependencies(record, ids)
                for record, ids in zip(records, dependencies, strict=False)
            ]
            plain = [record for record in records if record.unique_key is None]
            if plain:
                self._insert_rows(plain)
            stored = {
                id(record): self._insert_unique(record)
                for record in records
                if record.unique_key is not None
            }
            final = [stored.get(id(record), record) for record in records]
            self.graph.link(final, records, linked)
            self._made_ready_by(
                record
                for record, original in zip(final, records, strict=True)
                if record is original
            )
        return final

    @cached_property
    def _insert_columns(self) -> tuple[str, list[Field[Any, Any]]]:
        """The INSERT of one task row, and the fields its parameters come from, in order."""
        quote = self.connection.ops.quote_name
        fields = list(TaskRecord._meta.concrete_fields)
        sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 - quoted identifiers only
            quote(str(TaskRecord._meta.db_table)),
            ", ".join(quote(str(field.column)) for field in fields),
            ", ".join(["%s"] * len(fields)),
        )
        return sql, fields

    def insert_copies(self, copies: Copies) -> None:
        """Insert rows equal to copies.template but for their ids and arguments, all or none,
        and wake workers once they are committed."""
        with transaction.atomic(using=self.database_alias):
            self._write_copies(copies)
            self._made_ready_by([copies.template])

    def _write_copies(self, copies: Copies) -> None:
        """Write the rows of `copies` (dialects with a faster bulk path override this)."""
        self._insert_prepared(self._prepared_copies(copies))

    def _prepared_copies(self, copies: Copies) -> PreparedColumns:
        """The values of `copies`' rows, the template's prepared once, as _insert_rows()
        prepares the same rows given as records."""
        _, fields = self._insert_columns
        per_row = {
            "id": self._id_values(copies.ids),
            "args": self._json_values(copies.args_texts),
            "kwargs": self._json_values(copies.kwargs_texts),
        }
        values = copies.template.__dict__
        return PreparedColumns(
            count=copies.count,
            shared={
                index: self._prepare_value(field, values[field.attname])
                for index, field in enumerate(fields)
                if field.attname not in COPY_COLUMNS
            },
            varying={
                index: per_row[field.attname]
                for index, field in enumerate(fields)
                if field.attname in COPY_COLUMNS
            },
        )

    def _id_values(self, hex_ids: Sequence[str]) -> list[Any]:
        """Ids given as hex digits in the form the INSERT binds them (UUIDField's own)."""
        if self.connection.features.has_native_uuid_field:
            id_field = TaskRecord._meta.get_field("id")
            return [self._prepare_value(id_field, UUID(hex=value)) for value in hex_ids]
        # What UUIDField.get_db_prep_value() binds where there is no uuid type: the .hex.
        return list(hex_ids)

    def _json_values(self, texts: Sequence[str]) -> list[Any]:
        """JSON texts in the form the INSERT binds a JSONField's value, not encoded again."""
        adapt = self.connection.ops.adapt_json_value
        probe = "[]"
        if adapt(probe, VerbatimJSON) is probe:
            # SQLite and MySQL bind JSON as its text (PostgreSQL wraps it to type it jsonb).
            return list(texts)
        return [adapt(text, VerbatimJSON) for text in texts]

    def _insert_rows(self, records: Sequence[TaskRecord]) -> None:
        """Insert new rows without a unique key, as _insert_prepared() writes them."""
        _, fields = self._insert_columns
        self._insert_prepared(prepared_columns(records, fields, self._prepare_value))
        self._mark_saved(records)

    def _insert_prepared(self, columns: PreparedColumns) -> None:
        """Insert prepared rows, INSERT_BATCH_SIZE rows per statement.

        Rows of one enqueue_many() differ only in a few columns (id, arguments): the values
        they share are bound once per statement, in an INSERT ... SELECT over a table of what
        differs. Binding every column of every row took half of the INSERT's time on SQLite,
        and escaping each parameter a third of the call's on MariaDB.
        """
        insert, fields = self._insert_columns
        if not columns.varying:  # a single row: nothing to share
            self._execute_rows(insert, columns.rows())
            return
        order = sorted(columns.varying)
        # Column by column: the shared value's placeholder, or the column of the row table
        # that holds each row's own value.
        select = ", ".join(
            f"v.column{order.index(index) + 1}" if index in columns.varying else "%s"
            for index in range(len(fields))
        )
        shared = [columns.shared[index] for index in sorted(columns.shared)]
        head, _, _ = insert.rpartition(" VALUES ")
        rows = columns.varying_rows()
        with self.connection.cursor() as cursor:
            for start in range(0, len(rows), INSERT_BATCH_SIZE):
                batch = rows[start : start + INSERT_BATCH_SIZE]
                table = self._row_table(len(order), len(batch))
                cursor.execute(
                    f"{head} SELECT {select} FROM ({table}) AS v",  # noqa: S608 - no values
                    [*shared, *itertools.chain.from_iterable(batch)],
                )

    def _row_table(self, width: int, count: int) -> str:
        """A table of `count` rows of `width` placeholders, its columns named column1,
        column2, ... (as SQLite and PostgreSQL name the columns of a VALUES list)."""
        row = f"({', '.join(['%s'] * width)})"
        return f"VALUES {', '.join([row] * count)}"

    def _prepare_value(self, field: Field[Any, Any], value: Any) -> Any:
        """A value in the form the INSERT binds it (as Django's own save prepares it)."""
        return field.get_db_prep_save(value, self.connection)

    def _mark_saved(self, records: Sequence[TaskRecord]) -> None:
        for record in records:
            record._state.adding = False
            record._state.db = self.database_alias

    def _insert_one_sql(self, insert: str) -> str:
        """The statement inserting one ready task; dialects that push wake-ups extend it."""
        return insert

    def _prepared_insert_sql(self, insert: str, *, deferred: bool) -> tuple[str, tuple[str, ...]]:
        """The statement(s) of prepare_insert(), and the fields whose values they take after
        the row's (a wake-up's parameters); dialects that push wake-ups may do it cheaper.
        `deferred`: the rows' run_after is the task's own, maybe later than now."""
        return self._insert_one_sql(insert), ()

    def _insert_one(self, record: TaskRecord) -> None:
        """Insert one task and wake workers in a single statement, atomic on its own."""
        insert, _ = self._insert_columns
        sql = self._insert_one_sql(insert) if record.state == State.READY else insert
        self._execute_insert(sql, [record])

    def prepare_insert(self, template: TaskRecord, *, own_run_after: bool) -> PreparedInsert:
        """Prepare the one-statement insert of ready tasks like `template` (no unique key, no
        dependencies), as _insert_one() would write them, for enqueue() to reuse."""
        insert, fields = self._insert_columns
        sql, wake_fields = self._prepared_insert_sql(insert, deferred=own_run_after)
        return PreparedInsert(
            database_alias=self.database_alias,
            sql=sql,
            wake_fields=wake_fields,
            fields=fields,
            template=template,
            own_run_after=own_run_after,
        )

    def _execute_insert(self, sql: str, records: Sequence[TaskRecord]) -> None:
        """Run an INSERT of `records`, in _insert_columns' order, and mark them saved."""
        _, fields = self._insert_columns
        self._execute_rows(sql, prepared_rows(records, fields, self._prepare_value))
        self._mark_saved(records)

    def _execute_rows(self, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, list(itertools.chain.from_iterable(rows)))

    def _insert_unique(self, record: TaskRecord) -> TaskRecord:
        manager = TaskRecord.objects.using(self.database_alias)
        for _ in range(UNIQUE_INSERT_TRIES):
            try:
                # A savepoint, so a conflict doesn't abort the caller's transaction.
                with transaction.atomic(using=self.database_alias):
                    manager.bulk_create([record])
            except IntegrityError:
                existing = manager.filter(
                    unique_key=record.unique_key, state__in=ACTIVE_STATES
                ).first()
                if existing is not None:
                    return existing
            else:
                return record
        raise IntegrityError(
            f"Could not insert task {record.task_path} with unique key {record.unique_key!r}: "
            "the key kept conflicting with a task that finished meanwhile."
        )
