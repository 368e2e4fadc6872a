"""The task table's lean index set: partial indexes where only some rows need an entry, no
index of their own for foreign keys another index leads with. On PostgreSQL a plain task's
row now writes five index entries on insert, claim and finish, not thirteen
(docs/explanation/performance.md, "The task table's indexes").

The new indexes come first and the old ones go last: on MariaDB each foreign key must keep an
index it can use at every step, or dropping one fails.
"""

import django.db.models.deletion
import taskmill.queue.indexes
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("taskmill", "0003_task_table_index_cleanup"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="taskrecord",
            index=taskmill.queue.indexes.PartialIndex(
                condition=models.Q(("expires_at__isnull", False)),
                fallback_prefix=(),
                fields=["expires_at"],
                name="taskmill_expires_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="taskrecord",
            index=taskmill.queue.indexes.PartialIndex(
                condition=models.Q(("content_type__isnull", False)),
                fallback_prefix=(),
                fields=["content_type", "object_id", "-enqueued_at"],
                name="taskmill_owner_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="taskrecord",
            index=taskmill.queue.indexes.PartialIndex(
                condition=models.Q(("retry_of__isnull", False)),
                fallback_prefix=(),
                fields=["retry_of"],
                name="taskmill_retry_of_idx",
            ),
        ),
        migrations.AddConstraint(
            model_name="taskrecord",
            constraint=taskmill.queue.indexes.PartialUnique(
                condition=models.Q(("unique_key__isnull", False)),
                fields=("unique_key",),
                name="taskmill_unique_key",
            ),
        ),
        migrations.AddConstraint(
            model_name="taskrecord",
            constraint=taskmill.queue.indexes.PartialUnique(
                condition=models.Q(("schedule__isnull", False)),
                fields=("schedule", "scheduled_for"),
                name="taskmill_schedule_due_unique",
            ),
        ),
        migrations.RemoveConstraint(
            model_name="taskrecord",
            name="taskmill_schedule_run_unique",
        ),
        migrations.RemoveIndex(
            model_name="taskrecord",
            name="taskmill_expiry_idx",
        ),
        migrations.RemoveIndex(
            model_name="taskrecord",
            name="taskmill_object_idx",
        ),
        migrations.AlterField(
            model_name="taskrecord",
            name="content_type",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to="contenttypes.contenttype",
            ),
        ),
        migrations.AlterField(
            model_name="taskrecord",
            name="retry_of",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="retries",
                to="taskmill.taskrecord",
            ),
        ),
        migrations.AlterField(
            model_name="taskrecord",
            name="schedule",
            field=models.ForeignKey(
                blank=True,
                db_index=False,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="runs",
                to="taskmill.schedule",
            ),
        ),
        migrations.AlterField(
            model_name="taskrecord",
            name="unique_key",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
    ]
