"""The tables as the database sees them: the claim and lease indexes per vendor, constraints,
querysets, and migrations that match the models and apply in both directions."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from taskmill.models import Schedule, TaskDependency, TaskRecord
from taskmill.states import State
from tests.testapp import tasks
from tests.testapp.models import Article

pytestmark = pytest.mark.django_db

TABLE = TaskRecord._meta.db_table


def index(name: str) -> dict[str, Any]:
    """Return what Django's introspection reports for one index of the TaskRecord table."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    assert name in constraints, f"index {name} is missing; found {sorted(constraints)}"
    return dict(constraints[name])


def new_record(**fields: object) -> TaskRecord:
    now = timezone.now()
    values: dict[str, object] = {
        "backend": "default",
        "task_path": "tests.testapp.tasks.noop",
        "queue_name": "default",
        "enqueued_at": now,
        "run_after": now,
        **fields,
    }
    return TaskRecord.objects.create(**values)


# --- the claim index ----------------------------------------------------------------------


@pytest.mark.only_on("postgresql", "sqlite")
def test_claim_index__orders_ready_rows_by_priority_desc_run_after_id() -> None:
    claim = index("taskmill_claim_idx")

    assert claim["columns"] == ["priority", "run_after", "id"]
    assert claim["orders"] == ["DESC", "ASC", "ASC"]
    assert claim["unique"] is False


@pytest.mark.only_on("postgresql")
def test_claim_index__is_partial_over_ready_rows_on_postgresql() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexname = %s",
            [TABLE, "taskmill_claim_idx"],
        )
        (definition,) = cursor.fetchone()

    assert "WHERE ((state)::text = 'ready'::text)" in definition


@pytest.mark.only_on("sqlite")
def test_claim_index__is_partial_over_ready_rows_on_sqlite() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = %s",
            ["taskmill_claim_idx"],
        )
        (definition,) = cursor.fetchone()

    assert definition.endswith("""WHERE "state" = 'ready'""")


@pytest.mark.only_on("mysql")
def test_claim_index__is_a_full_index_led_by_state_on_mariadb() -> None:
    claim = index("taskmill_claim_idx")

    assert claim["columns"] == ["state", "priority", "run_after", "id"]
    assert claim["orders"] == ["ASC", "DESC", "ASC", "ASC"]


@pytest.mark.only_on("postgresql", "sqlite")
def test_lease_index__is_over_lease_expiry_of_running_rows() -> None:
    assert index("taskmill_lease_idx")["columns"] == ["lease_expires_at"]


@pytest.mark.only_on("mysql")
def test_lease_index__is_a_full_index_led_by_state_on_mariadb() -> None:
    assert index("taskmill_lease_idx")["columns"] == ["state", "lease_expires_at"]


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("taskmill_expires_idx", ["expires_at"]),
        ("taskmill_owner_idx", ["content_type_id", "object_id", "enqueued_at"]),
        ("taskmill_retry_of_idx", ["retry_of_id"]),
        ("taskmill_path_idx", ["task_path", "enqueued_at"]),
        ("taskmill_unique_key", ["unique_key"]),
        ("taskmill_schedule_due_unique", ["schedule_id", "scheduled_for"]),
    ],
)
def test_indexes__exist_on_every_database(name: str, columns: list[str]) -> None:
    assert index(name)["columns"] == columns


# Each index costs an entry on every insert and on every claim and finish; this is the whole
# set, so one added by accident (a foreign key's own, Django's LIKE index) shows here.
LEAN_INDEXES = [
    "taskmill_claim_idx",
    "taskmill_enqueued_idx",
    "taskmill_expires_idx",
    "taskmill_finished_idx",
    "taskmill_lease_idx",
    "taskmill_owner_idx",
    "taskmill_path_idx",
    "taskmill_retry_of_idx",
    "taskmill_schedule_due_unique",
    "taskmill_unique_key",
]
PARTIAL_INDEXES = {
    "taskmill_expires_idx": "expires_at",
    "taskmill_owner_idx": "content_type_id",
    "taskmill_retry_of_idx": "retry_of_id",
    "taskmill_unique_key": "unique_key",
    "taskmill_schedule_due_unique": "schedule_id",
}


def constraint_names() -> list[str]:
    """The task table's indexes and unique constraints, primary key aside."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, TABLE)
    return sorted(
        name
        for name, details in constraints.items()
        if (details["index"] or details["unique"]) and not details["primary_key"]
    )


def test_task_table__has_the_lean_index_set_and_no_other() -> None:
    assert constraint_names() == LEAN_INDEXES


def index_definitions() -> dict[str, str]:
    """Each index's SQL, from the database's own catalogue."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s", [TABLE]
            )
        else:
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s",
                [TABLE],
            )
        return {name: definition or "" for name, definition in cursor.fetchall()}


@pytest.mark.only_on("postgresql", "sqlite")
@pytest.mark.parametrize(("name", "column"), sorted(PARTIAL_INDEXES.items()))
def test_partial_indexes__hold_only_rows_with_a_value(name: str, column: str) -> None:
    # PostgreSQL writes WHERE (col IS NOT NULL), SQLite keeps Django's WHERE "col" IS NOT NULL.
    definition = index_definitions()[name]
    for mark in '"()':
        definition = definition.replace(mark, "")

    assert definition.endswith(f"WHERE {column} IS NOT NULL")


def plan_of(queryset: Any) -> str:
    """The database's plan for a queryset, with table scans ruled out where it allows that:
    a few rows are cheaper to scan than to read through any index."""
    sql, params = queryset.query.sql_with_params()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL enable_seqscan = off")
            cursor.execute(f"EXPLAIN {sql}", params)
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}", params)
        return "\n".join(str(row) for row in cursor.fetchall())


@pytest.mark.only_on("postgresql", "sqlite")
def test_partial_indexes__serve_the_lookups_they_are_for() -> None:
    # Each lookup's `= value` or `<` implies IS NOT NULL, which is what lets the planner use
    # an index that holds only the rows with a value; a query that stopped implying it would
    # read the whole table on every prune or owner page.
    article = Article.objects.create(title="indexed")
    original = new_record()

    assert "taskmill_owner_idx" in plan_of(TaskRecord.objects.for_object(article))
    assert "taskmill_retry_of_idx" in plan_of(TaskRecord.objects.filter(retry_of=original))
    assert "taskmill_expires_idx" in plan_of(
        TaskRecord.objects.filter(expires_at__lt=timezone.now()).order_by("expires_at")
    )
    assert "taskmill_unique_key" in plan_of(TaskRecord.objects.filter(unique_key="k"))


@pytest.mark.only_on("mysql")
@pytest.mark.parametrize("name", sorted(PARTIAL_INDEXES))
def test_partial_indexes__are_whole_indexes_on_mariadb(name: str) -> None:
    # No partial indexes on MariaDB: a whole index still serves the lookups and the foreign
    # keys, and a whole unique index enforces the same rule (NULLs never collide).
    assert index(name)["index"] is True


# --- constraints --------------------------------------------------------------------------


def test_unique_key__two_rows_cannot_hold_the_same_key() -> None:
    new_record(unique_key="k1")

    with pytest.raises(IntegrityError), transaction.atomic():
        new_record(unique_key="k1")


def test_unique_key__any_number_of_rows_may_have_none() -> None:
    for _ in range(3):
        new_record(unique_key=None)

    assert TaskRecord.objects.filter(unique_key__isnull=True).count() == 3


def test_schedule_runs__one_row_per_schedule_and_due_time() -> None:
    schedule = Schedule.objects.create(name="every-minute", task_path="tests.testapp.tasks.noop")
    due = timezone.now()
    new_record(schedule=schedule, scheduled_for=due)

    with pytest.raises(IntegrityError), transaction.atomic():
        new_record(schedule=schedule, scheduled_for=due)
    new_record(schedule=None, scheduled_for=due)
    new_record(schedule=None, scheduled_for=due)


def test_task_dependency__a_link_is_stored_once() -> None:
    dependency, dependant = new_record(), new_record()
    TaskDependency.objects.create(dependant=dependant, dependency=dependency)

    with pytest.raises(IntegrityError), transaction.atomic():
        TaskDependency.objects.create(dependant=dependant, dependency=dependency)


def test_task_dependency__deleting_a_task_deletes_its_links() -> None:
    dependency, dependant = new_record(), new_record()
    TaskDependency.objects.create(dependant=dependant, dependency=dependency)

    dependency.delete()

    assert not TaskDependency.objects.exists()
    assert TaskRecord.objects.filter(id=dependant.id).exists()


# --- fields, defaults, querysets ----------------------------------------------------------


def test_task_record__defaults() -> None:
    record = new_record()

    assert isinstance(record.id, uuid.UUID)
    assert record.id.version == 7
    assert record.state == State.READY
    assert record.priority == 0
    assert record.args == []
    assert record.kwargs == {}
    assert record.attempts == 0
    assert record.worker_ids == []
    assert record.errors == []
    assert record.return_value is None
    assert str(record) == f"tests.testapp.tasks.noop [ready] {record.id}"


def test_task_record__run_after_is_not_nullable() -> None:
    assert TaskRecord._meta.get_field("run_after").null is False

    with pytest.raises(IntegrityError), transaction.atomic():
        new_record(run_after=None)


def test_task_record__json_columns_keep_nested_values() -> None:
    progress = {"done": 3.0, "total": 10.0, "message": "step ✓"}
    record = new_record(args=[1, [2, {"x": None}]], progress=progress, return_value={"ok": True})

    record.refresh_from_db()

    assert record.args == [1, [2, {"x": None}]]
    assert record.progress == progress
    assert record.return_value == {"ok": True}


def test_querysets__active_and_finished_split_by_state() -> None:
    records = {state: new_record(state=state) for state in State}

    active = set(TaskRecord.objects.active().values_list("state", flat=True))
    finished = set(TaskRecord.objects.finished().values_list("state", flat=True))

    assert active == {"blocked", "ready", "running"}
    assert finished == {"succeeded", "failed", "cancelled"}
    assert len(records) == 6


def test_querysets__for_object_finds_the_rows_of_one_instance() -> None:
    article = Article.objects.create(title="a")
    mine = tasks.noop.using(for_object=article).enqueue()
    tasks.noop.enqueue()

    assert [
        str(pk) for pk in TaskRecord.objects.for_object(article).values_list("id", flat=True)
    ] == [mine.id]


# --- migrations ---------------------------------------------------------------------------


def test_migrations__are_all_applied() -> None:
    executor = MigrationExecutor(connection)

    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())

    assert plan == []
    assert ("taskmill", "0001_initial") in executor.recorder.applied_migrations()


def test_makemigrations__finds_no_changes_to_the_models() -> None:
    # Exits with status 1 if a model change has no migration.
    call_command("makemigrations", "taskmill", check=True, dry_run=True, verbosity=0)


@pytest.mark.django_db(transaction=True)
def test_migrations__unapply_and_apply_again() -> None:
    try:
        call_command("migrate", "taskmill", "zero", verbosity=0)
        with connection.cursor() as cursor:
            assert TABLE not in connection.introspection.table_names(cursor)
    finally:
        call_command("migrate", "taskmill", verbosity=0)

    with connection.cursor() as cursor:
        assert TABLE in connection.introspection.table_names(cursor)
    assert index("taskmill_claim_idx")["index"] is True
    assert tasks.noop.enqueue().task == tasks.noop


@pytest.mark.django_db(transaction=True)
def test_migration_0004__keeps_the_rows_and_their_rules_both_ways() -> None:
    schedule = Schedule.objects.create(name="hourly", task_path="tests.testapp.tasks.noop")
    due = timezone.now()
    first = new_record(unique_key="k1", schedule=schedule, scheduled_for=due)
    new_record(retry_of=first, content_type=ContentType.objects.get_for_model(Article))
    try:
        call_command("migrate", "taskmill", "0003", verbosity=0)
        assert "taskmill_unique_key" not in constraint_names()
    finally:
        call_command("migrate", "taskmill", verbosity=0)

    assert sorted(name for name in constraint_names() if name in LEAN_INDEXES) == LEAN_INDEXES
    assert TaskRecord.objects.get(unique_key="k1").retries.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        new_record(unique_key="k1")
    with pytest.raises(IntegrityError), transaction.atomic():
        new_record(schedule=schedule, scheduled_for=due)
